"""Vision-language model backends behind one interface, found by name in one registry.

    backend = get_backend("transformers")(model="meta-llama/Llama-3.2-11B-Vision-Instruct")
    for piece in backend.stream(messages, images, GenerationOptions(max_new_tokens=200)):
        print(piece, end="")

`messages` are in the transformers chat format: ``[{"role": "user", "content":
[{"type": "image"}, {"type": "text", "text": "..."}]}, {"role": "assistant", ...}]``;
`images` are PIL images, one per ``{"type": "image"}`` entry, in order.
"""
from __future__ import annotations

from .base import BACKENDS, Backend, GenerationOptions, ModelUnavailable, get_backend, register

__all__ = ["BACKENDS", "Backend", "GenerationOptions", "ModelUnavailable", "get_backend", "register"]
