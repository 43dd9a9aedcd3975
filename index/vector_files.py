"""The vector cache's files: `vectors.faiss` read and written through Python files, and its stamp.

The stamp (`vectors.faiss.stamp`: the database's uuid, its change generation and the checksum
of the (id, vector) pairs the file holds, plus the file's size and mtime) lets a reader tell a
current file from a stale or foreign one without trusting ids alone (`Index.reconcile`).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

FAISS_NAME = "vectors.faiss"
STAMP_NAME = FAISS_NAME + ".stamp"


def read_faiss(path: Path, mapped: bool = False):
    """faiss.read_index through a Python file: any path works (faiss's own wants str, and a folder
    name with bytes that are not UTF-8 is a surrogate str it cannot encode).

    `mapped`: an IVF file's lists are mapped from disk, read only (faiss IO_FLAG_MMAP), where the
    path can be given to faiss as UTF-8; other files are read whole either way.
    """
    import faiss

    if mapped:
        try:
            name = os.fsencode(path).decode("utf-8")
        except UnicodeDecodeError:
            name = None
        if name is not None:
            return faiss.read_index(name, faiss.IO_FLAG_MMAP)
    with open(path, "rb", buffering=1 << 20) as f:
        reader = faiss.PyCallbackIOReader(f.read)
        try:
            return faiss.read_index(reader)
        finally:
            del reader


def write_faiss(index, path: Path) -> None:
    """faiss.write_index through a Python file (see read_faiss), flushed and fsynced."""
    import faiss

    with open(path, "wb", buffering=1 << 20) as f:
        writer = faiss.PyCallbackIOWriter(f.write)
        try:
            faiss.write_index(index, writer)
        finally:
            del writer
        f.flush()
        os.fsync(f.fileno())



def stamp_on_disk(folder: Path) -> dict | None:
    """The FAISS file's stamp ({"uuid", "gen", "sum"}) if it names the file beside it (size, mtime), without
    reading the file: whether the cache is current costs two small reads, not loading it."""
    try:
        stamp = json.loads((Path(folder) / STAMP_NAME).read_text())
        st = (Path(folder) / FAISS_NAME).stat()
        if (stamp["size"], stamp["mtime_ns"]) != (st.st_size, st.st_mtime_ns):
            return None
        return {"uuid": str(stamp["uuid"]), "gen": int(stamp["gen"]), "sum": int(stamp["sum"])}
    except (OSError, ValueError, KeyError, TypeError):
        return None
