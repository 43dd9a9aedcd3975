"""What the OpenAI-backend tests share: a stand-in model to serve, pages, and a server fixture.

    def test_x(serve):
        server = serve(reply="html")            # tests/openai_server.py, serving EchoBackend
        client(server).generate(QUESTION, [page(), page()], OPTIONS)
"""
from __future__ import annotations

import contextlib
import random
import time

import pytest
from PIL import Image

from openai_server import OpenAIServer
from rag.backends import Backend, GenerationOptions
from rag.backends.openai import OpenAIBackend

MODEL = "echo-vision"
OPTIONS = GenerationOptions(max_new_tokens=7, temperature=0.0, timeout=10.0)
QUESTION = [
    {"role": "user", "content": [
        {"type": "image"},
        {"type": "text", "text": "Wie hoch ist die Summe – in €?"},
        {"type": "image"},
        {"type": "text", "text": " Answer briefly."},
    ]},
]


class EchoBackend(Backend):
    """Stands in for the model behind the server: its reply is computed from the texts and
    image sizes it was given, in pieces of 7 characters; it can crash after some pieces."""

    name = "echo"

    def __init__(self, fail_after: int | None = None, delay: float = 0.0):
        super().__init__("echo")
        self.fail_after = fail_after
        self.delay = delay  # seconds before each piece: a slow model

    def stream(self, messages, images, options):
        texts = [
            part["text"]
            for message in messages
            for part in ([{"type": "text", "text": message["content"]}] if isinstance(message["content"], str)
                         else message["content"])
            if part["type"] == "text"
        ]
        sizes = " ".join(f"{w}x{h}" for w, h in (image.size for image in images)) or "none"
        reply = f"{'|'.join(texts)} images={sizes} max={options.max_new_tokens} t={options.temperature:g}"
        for i in range(0, len(reply), 7):
            if self.fail_after is not None and i // 7 == self.fail_after:
                raise RuntimeError("the model crashed")
            time.sleep(self.delay)
            yield reply[i:i + 7]


class FixedReply(Backend):
    """Stands in for a model that always says `text`, word by word."""

    name = "fixed"

    def __init__(self, text: str = "The lot will be resurfaced [1]."):
        super().__init__("fixed")
        self.text = text

    def stream(self, messages, images, options):
        words = self.text.split(" ")
        yield from [words[0]] + [" " + word for word in words[1:]]


def page(size=(120, 80), color="white") -> Image.Image:
    return Image.new("RGB", size, color)


def noise(size=(64, 48), seed=0) -> Image.Image:
    rng = random.Random(seed)
    return Image.frombytes("RGB", size, bytes(rng.randrange(256) for _ in range(size[0] * size[1] * 3)))


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("PAGERAG_BASE_URL", "OPENAI_BASE_URL", "PAGERAG_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def serve():
    """Start an OpenAIServer (EchoBackend unless given a backend); stopped after the test."""
    with contextlib.ExitStack() as stack:
        def start(backend: Backend | None = None, **kwargs) -> OpenAIServer:
            kwargs.setdefault("models", [MODEL])
            return stack.enter_context(OpenAIServer(backend or EchoBackend(), **kwargs))

        yield start


def client(server: OpenAIServer, **options) -> OpenAIBackend:
    return OpenAIBackend(model=options.pop("model", MODEL), base_url=server.url, **options)
