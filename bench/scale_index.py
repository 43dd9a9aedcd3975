"""The scale benchmark's index: 10^6 pages written through the real storage code (`Index.add_pages`:
packed words, float16 vectors, FTS5), one passage per page, cached in bench/.cache/scale-index-*;
then the passage vectors set in SQLite (`fill_vectors`). See scale.py.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from harness import HERE, BenchError, Synth, log, measure

CACHE = Path(os.environ.get("PAGERAG_BENCH_CACHE", HERE / ".cache"))  # a scratch cache for trial runs
FAISS_FILE = "vectors.faiss"
WORDS = (15, 110)
PAGES_VERSION = 1  # bump when the pages written change (the vectors are keyed apart: fill_vectors)


def _words_of(lines: list[str]):
    """Words with plausible boxes: lines 1/60 of the page apart, width by characters."""
    from index.words import Word

    out = []
    for lid, line in enumerate(lines):
        x, y = 0.08, 0.06 + lid * 0.016
        for t in line.split(" "):
            w = 0.0105 * len(t)
            out.append(Word(t, x, y, min(x + w, 0.95), y + 0.012, 0.9, lid))
            x += w + 0.006
    return out


def ensure_index(size: int, seed: int = 0) -> tuple[Path, dict]:
    """The cached SQLite index of the first `size` synthetic pages, passages' vectors still zero
    (`fill_vectors` sets them, so pages can be written while real passages are embedded); no
    FAISS file (`fit` makes it). One folder per seed that grows: a run for more pages resumes
    where the last stopped (an interrupted one too: every 1,000-page document is a transaction).
    """
    from index.schema import FORMAT_VERSION, SCHEMA

    schema = hashlib.sha256(SCHEMA.encode()).hexdigest()[:8]  # the format version moves less often
    folder = CACHE / f"scale-index-v{PAGES_VERSION}-f{FORMAT_VERSION}-{schema}-s{seed}"
    marker = folder / "built.json"
    folder.mkdir(parents=True, exist_ok=True)
    lock = _wait_for_lock(folder)
    try:
        return _write_pages(folder, marker, size, seed)
    finally:
        lock.release()


def _wait_for_lock(folder: Path):
    """The index's write lock, waiting while another run (say, one filling the cache ahead) holds it."""
    from index.errors import IndexLocked
    from index.lock import WriteLock

    while True:
        try:
            return WriteLock(folder).acquire()
        except IndexLocked:
            log(f"scale: waiting for the other writer of {folder.name}")
            time.sleep(30)


def _write_pages(folder: Path, marker: Path, size: int, seed: int) -> tuple[Path, dict]:
    from index.embed import DEFAULT_MODEL
    from index.store import Index, NewChunk, NewPage
    from scale_data import DIM

    built = json.loads(marker.read_text()) if marker.exists() else {"wall": 0.0, "cpu": 0.0, "vectors": None}
    idx = Index.open(folder, create=True)
    idx.set_meta(embed_model=DEFAULT_MODEL, embed_dim=DIM)
    for doc in idx.db.execute("SELECT id FROM documents WHERE status != 'done'").fetchall():
        idx.remove_document(doc[0])  # the document a killed run was writing
    have = idx.db.execute("SELECT count(*) FROM pages").fetchone()[0]
    if have > size:
        idx.close()
        raise BenchError(f"{folder} holds {have:,} pages, more than --size {size:,}: delete it or ask for more")
    synth = Synth(seed, WORDS)
    zero = bytes(4 * DIM)
    per_doc = 1000
    if have < size:
        log(f"scale: writing pages {have:,}-{size:,} to {folder.name} (Index.add_pages; ~10k pages/min on 2 busy cores)")
    with measure() as span:
        for start in range(have, size, per_doc):
            stop = min(size, start + per_doc)
            title = f"doc {start // per_doc}"
            doc = idx.add_document(f"/bench/scale/doc{start // per_doc:05d}.pdf", f"{start:064d}", 1, 1, "pdf",
                                   title, stop - start)
            pages = []
            for i in range(start, stop):
                lines = synth.page(i)
                body = " ".join(lines[1:])
                pages.append(NewPage(doc, i - start + 1, 612, 792, "text-layer", "\n".join(lines), _words_of(lines),
                                     None, [NewChunk(body, 0, len(body.split()), (0.08, 0.06, 0.9, 0.5), zero)]))
            idx.add_pages(pages, {doc: title})
            idx.finish_document(doc)
            if stop % 50_000 == 0:
                log(f"scale: {stop:,} pages written")
        idx.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        idx.close()
    if have < size:
        built = {"wall": built["wall"] + round(span.wall, 1), "cpu": built["cpu"] + round(span.cpu, 1),
                 "others": span.others, "when": time.strftime("%Y-%m-%d %H:%M"), "vectors": None}
    built["pages"] = size
    marker.write_text(json.dumps(built))
    return folder, built


def fill_vectors(folder: Path, built: dict, vectors, key: str) -> dict:
    """Set chunks.vector (chunk id i + 1 <- vectors[i], float16 as the store keeps them), once per `key`."""
    import sqlite3

    if built.get("vectors") == key:
        return built
    log(f"scale: setting {len(vectors):,} passage vectors")
    with measure() as span:
        db = sqlite3.connect(folder / "index.db", isolation_level=None)
        if db.execute("SELECT count(*), max(id) FROM chunks").fetchone() != (len(vectors), len(vectors)):
            raise BenchError(f"{folder}: chunk ids are not 1..{len(vectors)}; delete the folder and run again")
        db.execute("PRAGMA journal_mode=WAL")
        for start in range(0, len(vectors), 50_000):
            block = vectors[start:start + 50_000].astype("float16")
            db.execute("BEGIN")
            db.executemany("UPDATE chunks SET vector = ? WHERE id = ?",
                           ((block[j].tobytes(), start + j + 1) for j in range(len(block))))
            db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
    (folder / FAISS_FILE).unlink(missing_ok=True)
    built = {**built, "vectors": key, "vectors_wall": round(span.wall, 1)}
    (folder / "built.json").write_text(json.dumps(built))
    return built
