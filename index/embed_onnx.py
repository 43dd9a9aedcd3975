"""The ONNX encoder: onnxruntime + tokenizers, no torch (what search and builds use).

    OnnxEmbedder(name, folder, onnx_dir).encode(["text", ...])   # -> float32 (n, 384), rows of unit length

The ONNX graph is the model's transformer alone; tokenisation (truncation at max_seq_length),
pooling (`pool`) and normalisation are replayed from the model folder's own
sentence-transformers config, recorded in the export's pipeline.json (onnx_export.py).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

ONNX_FILE, PIPELINE_FILE = "model.onnx", "pipeline.json"
INT8_FILE, INT8_UNSUPPORTED_FILE = "model.int8.onnx", "int8-unsupported.txt"  # onnx_export.quantize_int8
# padded tokens per ONNX run: 4 passages of 128 tokens, 2 of 256, 32 short queries. Small runs keep a
# layer's activations in the core's cache: 0.6-0.7x the CPU time of 4,096-token runs (MiniLM, fp32 and int8)
MAX_BATCH_TOKENS = 512


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
        threads = threads or self.threads or os.cpu_count() or 1
        batches = [[order[j] for j in run] for run in runs([len(ids[i]) for i in order], self.batch_size, threads)]
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


def runs(lengths: list[int], batch_size: int, threads: int = 1) -> list[list[int]]:
    """Positions 0..n-1 of texts sorted longest first (their token counts), cut into ONNX runs of at most
    `batch_size` texts and MAX_BATCH_TOKENS padded tokens (a run's first text sets its padded length).
    With several threads, a multiple of `threads` runs of even size when they fit, so that no thread
    idles while another finishes: runs([120] * 10, 32, 2) -> 4 runs of 3, 3, 2, 2 (not 3, 3, 3, 1)."""
    greedy: list[list[int]] = [[]]
    for i, n in enumerate(lengths):
        rows = greedy[-1]
        if rows and (len(rows) == batch_size or (len(rows) + 1) * lengths[rows[0]] > MAX_BATCH_TOKENS):
            greedy.append(rows := [])
        rows.append(i)
    k = min(len(lengths), -(-len(greedy) // threads) * threads)
    if threads <= 1 or k in (0, len(greedy)):
        return greedy
    even, start = [], 0
    for r in range(k):
        size = len(lengths) // k + (r < len(lengths) % k)
        if size > batch_size or size * lengths[start] > MAX_BATCH_TOKENS:
            return greedy
        even.append(list(range(start, start + size)))
        start += size
    return even


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
