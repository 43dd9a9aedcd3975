"""Passage and query embeddings, rows of unit length for inner-product search.

    embedder = load_embedder("sentence-transformers/all-MiniLM-L6-v2", index_folder)
    embedder.encode(["text", ...])  # -> float32 (n, 384)

Two encoders of one model: `OnnxEmbedder` (index/embed_onnx.py: onnxruntime + tokenizers,
no torch: what search and builds use) and `Embedder` (index/embed_torch.py: sentence-transformers
on torch: the reference, and the fallback for a model that cannot be exported); where a model's
files are, in index/embed_models.py. This module chooses between them and keeps the exports. The ONNX graph is the model's
transformer alone; tokenisation (truncation at max_seq_length), pooling and
normalisation are replayed from the model folder's own sentence-transformers config
(modules.json, 1_Pooling/config.json), and an export is kept only if it reproduces
sentence-transformers on probe texts (onnx_export.py).
"""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

# DEFAULT_MODEL, Embedder, OnnxEmbedder and load_embedder: what callers import from here
from .embed_models import DEFAULT_MODEL, downloads_allowed, missing_model_message, model_folder  # noqa: F401
from .embed_onnx import ONNX_FILE, PIPELINE_FILE, OnnxEmbedder
from .embed_torch import Embedder
from .errors import EmbedderUnavailable

ONNX_FORMAT = 2  # bump when the export or pipeline.json changes: new cache keys, fresh exports
UNSUPPORTED_FILE = "unsupported.txt"

log = logging.getLogger(__name__)


def model_key(folder: Path) -> str:
    """A short name for the model folder's exact contents (file names, sizes, mtimes) and the export format."""
    h = hashlib.sha256(f"{ONNX_FORMAT}|{folder.resolve()}".encode("utf-8", "surrogateescape"))
    files = []  # relative parts, as Path.rglob("*") listed them (os.walk: no pattern to compile, ~4x quicker)
    for top, dirs, names in os.walk(folder):
        rel = Path(top).relative_to(folder).parts
        files += [(*rel, name) for name in names if not name.startswith(".")]
    for parts in sorted(files):
        try:
            st = os.stat(folder.joinpath(*parts))  # follows links, as is_file() did
        except OSError:
            continue  # a broken link
        h.update(f"|{'/'.join(parts)}:{st.st_size}:{st.st_mtime_ns}".encode("utf-8", "surrogateescape"))
    return h.hexdigest()[:20]


def cache_root() -> Path:
    """$XDG_CACHE_HOME/pagerag/onnx, else ~/.cache/pagerag/onnx."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pagerag" / "onnx"


def onnx_dirs(key: str, index_folder: Path | None) -> list[Path]:
    """Where an export of model `key` may live, in the order looked at: the user cache, the index folder."""
    dirs = [cache_root() / key]
    if index_folder is not None:
        dirs.append(Path(index_folder) / "onnx" / key)
    return [d for d in dirs if _utf8(d)]  # torch.onnx, onnx and onnxruntime take str paths they encode as UTF-8


def _utf8(path: Path) -> bool:
    try:
        str(path).encode("utf-8")
        return True
    except UnicodeEncodeError:  # a folder name with bytes that are not UTF-8
        return False



def check_model_available(name: str) -> None:
    """Raise EmbedderUnavailable now, before a build reads any page, when `name` cannot be a model: not
    available locally (and no download allowed), or a folder that holds none (`--embed-model ~`)."""
    folder = model_folder(name)
    if folder is None:
        if not downloads_allowed():
            raise EmbedderUnavailable(missing_model_message(name))
        return
    if not any((folder / f).is_file() for f in ("modules.json", "config.json")):
        raise EmbedderUnavailable(f"cannot load embedding model '{name}': the folder {folder} holds no model "
                                  "(neither modules.json nor config.json); pass a folder holding a "
                                  "sentence-transformers model with --embed-model PATH")


def embed_backend() -> str:
    """PAGERAG_EMBED_BACKEND: 'onnx' (also when unset) or 'torch'; anything else is an error, said at once."""
    value = os.environ.get("PAGERAG_EMBED_BACKEND", "")
    backend = value.strip().lower() or "onnx"
    if backend not in ("onnx", "torch"):
        raise EmbedderUnavailable(f"PAGERAG_EMBED_BACKEND is {value!r}: set it to 'onnx' (the default) or 'torch' "
                                  "(sentence-transformers), or unset it")
    return backend


def int8_wanted() -> bool:
    """PAGERAG_EMBED_INT8: builds embed passages with the int8 graph unless it is 0 / false / no / off; anything
    but those and 1 / true / yes / on (or unset) is an error, said at once (as PAGERAG_EMBED_BACKEND's)."""
    value = os.environ.get("PAGERAG_EMBED_INT8", "")
    word = value.strip().lower()
    if word in ("0", "false", "no", "off"):
        return False
    if word in ("", "1", "true", "yes", "on"):
        return True
    raise EmbedderUnavailable(f"PAGERAG_EMBED_INT8 is {value!r}: set it to 1 (the default: passages embedded with "
                              "the int8 graph) or 0, or unset it")


def load_embedder(name: str, index_folder: Path | None = None, threads: int | None = None,
                  export: bool = True, few_queries: bool = False, passages: bool = False) -> Embedder | OnnxEmbedder:
    """The ONNX encoder of `name` when it has been (or can now be) exported, else sentence-transformers.

    The first call for a model exports it (torch, ~10 s, once per model and machine); a model
    that cannot be exported or reproduced is noted once and served by sentence-transformers.
    `few_queries`, `passages` (an index build: int8 passages, see int8_wanted): see OnnxEmbedder."""
    backend = embed_backend()
    folder = model_folder(name)
    if folder is None and not downloads_allowed():  # at once: no torch import, no network
        raise EmbedderUnavailable(missing_model_message(name))
    if folder is None or backend == "torch":
        return Embedder(name, threads=threads)  # the same errors as ever when it is missing
    key = model_key(folder)
    dirs = onnx_dirs(key, index_folder)
    for d in dirs:
        if (d / ONNX_FILE).is_file() and (d / PIPELINE_FILE).is_file():
            return OnnxEmbedder(name, folder, d, threads, few_queries=few_queries, int8=passages and int8_wanted())
        if (d / UNSUPPORTED_FILE).is_file():
            return _fallback(name, threads, (d / UNSUPPORTED_FILE).read_text().strip())
    if not export:
        return Embedder(name, threads=threads)
    from .onnx_export import NotExportable, export_onnx

    try:
        target = export_onnx(name, folder, dirs)
    except NotExportable as e:
        _record_unsupported(dirs, str(e))
        return _fallback(name, threads, str(e))
    return OnnxEmbedder(name, folder, target, threads, few_queries=few_queries, int8=passages and int8_wanted())


def _fallback(name: str, threads: int | None, reason: str) -> Embedder:
    log.warning("note: embedding model '%s' runs on sentence-transformers (torch): no ONNX export (%s)", name, reason)
    return Embedder(name, threads=threads)


def _record_unsupported(dirs: list[Path], reason: str) -> None:
    """Remember that a model cannot be exported, so that later commands do not retry (and import torch)."""
    for d in dirs:
        try:
            d.mkdir(parents=True, exist_ok=True)
            (d / UNSUPPORTED_FILE).write_text(reason + "\n")
            return
        except OSError:
            continue
