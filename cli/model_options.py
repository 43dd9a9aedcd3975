"""Options shared by `ask`, `chat` and `index build --captions`: which model, and how to run it."""
from __future__ import annotations

import click

from .common import Number

MODEL_OPTIONS = [
    click.option("-m", "--model", envvar="PAGERAG_MODEL",
                 help="Hub id, local folder, or server model name [default: the backend's; "
                      "transformers: meta-llama/Llama-3.2-11B-Vision-Instruct, openai: llama3.2-vision]."),
    click.option("--backend", type=click.Choice(["transformers", "openai"]), envvar="PAGERAG_BACKEND",
                 default="transformers", show_default=True, help="Run the model here, or ask a server."),
    click.option("--dtype", type=click.Choice(["auto", "bfloat16", "float16", "float32"]), default=None,
                 help="transformers: weight dtype [default: auto]."),
    click.option("--quantize", type=click.Choice(["4bit", "8bit"]), default=None,
                 help="transformers: load in 4/8 bits with bitsandbytes (CUDA)."),
    click.option("--device-map", default=None, help="transformers: accelerate device map [default: auto on CUDA]."),
    click.option("--allow-download", is_flag=True, help="transformers: let a missing model be downloaded."),
    click.option("--base-url", envvar="PAGERAG_BASE_URL",
                 help="openai: the server, e.g. http://localhost:11434/v1 (Ollama), http://localhost:8000/v1 (vLLM)."),
]

GENERATION_OPTIONS = [
    click.option("--max-new-tokens", type=click.IntRange(1, 8192), default=512, show_default=True),
    click.option("--temperature", type=Number(0, 2), default=0.0, show_default=True,
                 help="0 decodes greedily."),
    click.option("--timeout", type=Number(1, 3600), default=300, show_default=True,
                 help="openai: seconds the whole answer may take (waiting, model loading, streaming)."),
]


def apply(options):
    def decorator(fn):
        for option in reversed(options):
            fn = option(fn)
        return fn
    return decorator


def model_settings(kw: dict):
    """Pop the model options out of a command's kwargs into ModelSettings."""
    from rag.settings import ModelSettings

    return ModelSettings(backend=kw.pop("backend"), model=kw.pop("model"), dtype=kw.pop("dtype"),
                         quantize=kw.pop("quantize"), device_map=kw.pop("device_map"),
                         allow_download=kw.pop("allow_download"), base_url=kw.pop("base_url"))


def generation_options(kw: dict):
    from rag.backends import GenerationOptions

    return GenerationOptions(max_new_tokens=kw.pop("max_new_tokens"), temperature=kw.pop("temperature"),
                             timeout=kw.pop("timeout"))
