"""The backend interface and its registry."""
from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Iterator

from index.errors import PageragError


class ModelUnavailable(PageragError):
    """The model cannot be used: not downloaded, gated, hub unreachable, server down, no GPU for 4-bit.

    The message says exactly how to get it or where to point instead.
    """


@dataclass
class GenerationOptions:
    max_new_tokens: int = 512
    temperature: float = 0.0  # 0 means greedy decoding
    timeout: float = 120.0  # seconds, for remote backends: the whole answer, from `ready` to the last piece
    deadline: float | None = None  # time.monotonic() by which the answer must be done (set by `ready`)


class Backend(ABC):
    """A chat model that sees images. Subclasses load lazily: nothing heavy in __init__."""

    name: str = ""
    default_model: str = ""
    # why the last stream ended, once it has: "stop", "length" (max_new_tokens reached: the answer is cut
    # off), or None when the backend cannot tell
    finish_reason: str | None = None

    def __init__(self, model: str | None = None, **options):
        self.model = model or self.default_model
        self.options = options

    @abstractmethod
    def stream(self, messages: list[dict], images: list, options: GenerationOptions) -> Iterator[str]:
        """Yield the reply as text pieces. Raises ModelUnavailable when the model cannot be used."""

    def generate(self, messages: list[dict], images: list, options: GenerationOptions) -> str:
        return "".join(self.stream(messages, images, options))

    def load(self) -> None:
        """Make sure the model is usable now (raise ModelUnavailable if not); a no-op by default."""

    def ready(self, options: GenerationOptions) -> GenerationOptions:
        """Before one answer: load, and return the options to stream it with (a remote backend starts the
        answer's deadline here, so that its reachability check counts against --timeout too)."""
        self.load()
        return options


# name -> "module:Class", imported on first use so `pagerag --help` stays fast
BACKENDS: dict[str, str] = {
    "transformers": "rag.backends.hf:TransformersBackend",
    "openai": "rag.backends.openai:OpenAIBackend",
}


def register(name: str, target: str) -> None:
    """Add a backend: `register("mine", "my_pkg.module:MyBackend")`."""
    BACKENDS[name] = target


def get_backend(name: str) -> type[Backend]:
    if name not in BACKENDS:
        raise ModelUnavailable(f"unknown backend '{name}'; choose one of {', '.join(sorted(BACKENDS))}")
    module, cls = BACKENDS[name].split(":")
    return getattr(importlib.import_module(module), cls)
