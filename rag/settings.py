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
    return cls(s.model, **options)
