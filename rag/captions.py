"""Page captions at index time: a vision-language backend as the builder's captioner."""
from __future__ import annotations

import hashlib

from . import prompts
from .backends import Backend, GenerationOptions


class BackendCaptioner:
    """`captioner(page_image) -> "A one-page invoice from ..."`; `key` changes with the model or the prompt."""

    def __init__(self, backend: Backend, options: GenerationOptions | None = None):
        self.backend = backend
        self.options = options or GenerationOptions(max_new_tokens=120)
        prompt_id = hashlib.sha256(prompts.CAPTION.encode()).hexdigest()[:12]
        self.key = f"{backend.name}:{backend.model}:{prompt_id}"

    def __call__(self, image) -> str:
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompts.CAPTION}]}]
        return self.backend.generate(messages, [image], self.options).strip()
