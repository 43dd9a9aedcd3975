"""Model settings in one place, resolved flag -> environment variable -> default.

    PAGERAG_BACKEND   transformers | openai           (default transformers)
    PAGERAG_MODEL     hub id, local folder, or server model name (default: the backend's)
    PAGERAG_BASE_URL  the OpenAI-compatible server (openai backend)
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from .backends import Backend, get_backend

DEFAULT_BACKEND = "transformers"
# which settings each backend takes (each refuses options it does not know)
BACKEND_OPTIONS = {
    "transformers": ("dtype", "device_map", "quantize", "allow_download"),
    "openai": ("base_url",),
}


# What a backend's server accepts for a model, by the model name's family: "x/llama3.2-vision:11b" ->
# "llama3.2-vision". Ollama runs llama3.2-vision (Mllama) with one image per message (the prompt puts
# a turn's images in one message), and answers more with an error; vLLM serves the same weights as
# meta-llama/Llama-3.2-11B-Vision-Instruct, a name outside this table.
MODEL_LIMITS: dict[tuple[str, str], dict] = {
    ("openai", "llama3.2-vision"): {"max_images": 1},
}


def model_limits(backend: str, model: str) -> dict:
    """The limits MODEL_LIMITS records for `model` served by `backend`, as backend options ({} if none)."""
    family = model.rsplit("/", 1)[-1].split(":", 1)[0].lower()
    return dict(MODEL_LIMITS.get((backend, family), {}))


@dataclass
class ModelSettings:
    backend: str | None = None
    model: str | None = None
    dtype: str | None = None
    device_map: str | None = None
    quantize: str | None = None
    allow_download: bool = False
    base_url: str | None = None

    def resolved(self) -> "ModelSettings":
        return ModelSettings(
            backend=self.backend or os.environ.get("PAGERAG_BACKEND") or DEFAULT_BACKEND,
            model=self.model or os.environ.get("PAGERAG_MODEL") or None,
            dtype=self.dtype, device_map=self.device_map, quantize=self.quantize,
            allow_download=self.allow_download, base_url=self.base_url)


def create_backend(settings: ModelSettings) -> Backend:
    """The configured backend, not loaded yet (loading happens on first use)."""
    s = settings.resolved()
    cls = get_backend(s.backend)
    options = {name: getattr(s, name) for name in BACKEND_OPTIONS.get(s.backend, ())
               if getattr(s, name) not in (None, False)}
    options.update(model_limits(s.backend, s.model or cls.default_model))
    return cls(s.model, **options)
