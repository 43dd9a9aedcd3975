"""Local vision-language models through transformers: any image-text-to-text checkpoint.

    backend = TransformersBackend("meta-llama/Llama-3.2-11B-Vision-Instruct", quantize="4bit")
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Who signed?"}]}]
    for piece in backend.stream(messages, [page_image], GenerationOptions(max_new_tokens=100)):
        print(piece, end="")

The checkpoint's own processor and chat template turn the conversation into tokens, so
Mllama (Llama 3.2-Vision), LLaVA and other families work alike; what a family needs
beyond that is in QUIRKS, keyed by `config.model_type`. Nothing is downloaded unless
`allow_download=True`: a model missing from the local cache fails at once with the
command that fetches it.
"""
from __future__ import annotations

import importlib.util
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .base import Backend, GenerationOptions, ModelUnavailable

DTYPES = ("auto", "bfloat16", "float16", "float32")
QUANTIZE = (None, "4bit", "8bit")
IMAGE_SOURCE_KEYS = ("image", "url", "path", "base64")  # where transformers looks for an image in a part


@dataclass(frozen=True)
class Quirks:
    """What a model family needs beyond its processor and chat template."""

    images_first: bool = False  # move a turn's images before its text (text before an image leaks into it)
    no_system_with_images: bool = False  # the template refuses a system turn beside images: fold it into the user turn
    int8_skip_modules: tuple[str, ...] = ()  # kept in 16 bits under 8-bit quantization


# config.model_type -> Quirks; families not listed need none
QUIRKS: dict[str, Quirks] = {
    "mllama": Quirks(images_first=True, no_system_with_images=True,
                     int8_skip_modules=("multi_modal_projector", "lm_head")),
    "llava": Quirks(int8_skip_modules=("multi_modal_projector", "lm_head")),
}


class TransformersBackend(Backend):
    """An image-text-to-text model run in this process.

    Options: dtype ("auto" | "bfloat16" | "float16" | "float32"), device_map (default "auto"
    with CUDA, else CPU), quantize (None | "4bit" | "8bit", bitsandbytes on CUDA),
    allow_download (default False).
    """

    name = "transformers"
    default_model = "meta-llama/Llama-3.2-11B-Vision-Instruct"

    def __init__(self, model: str | None = None, **options):
        super().__init__(model, **options)
        unknown = set(options) - {"dtype", "device_map", "quantize", "allow_download"}
        if unknown:
            raise ValueError(f"unknown option(s) for the transformers backend: {', '.join(sorted(unknown))}")
        self.dtype = options.get("dtype") or "auto"
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, not {self.dtype!r}")
        self.quantize = options.get("quantize")
        if self.quantize not in QUANTIZE:
            raise ValueError(f"quantize must be '4bit', '8bit' or None, not {self.quantize!r}")
        self.device_map = options.get("device_map")
        self.allow_download = bool(options.get("allow_download", False))
        self.last_input_ids: list[int] | None = None  # token ids of the last prompt, for inspection
        self._config = None
        self._processor = None
        self._model = None

    # -- loading -----------------------------------------------------------------------

    def load(self) -> None:
        self._load_processor()
        if self._model is None:
            self._model = self._load_model()

    @property
    def quirks(self) -> Quirks:
        self._load_processor()
        return QUIRKS.get(self._config.model_type, Quirks())

    def _load_processor(self) -> None:
        if self._processor is not None:
            return
        if self.quantize:
            self._check_quantization()  # before touching files: the answer does not depend on them
        self._hub_env()
        self._check_cached()
        from transformers import AutoConfig, AutoProcessor

        self._config = self._from_pretrained(AutoConfig)
        self._processor = self._from_pretrained(AutoProcessor)

    def _load_model(self):
        import torch
        import transformers

        kwargs = {"dtype": self.dtype if self.dtype == "auto" else getattr(torch, self.dtype)}
        device_map = self.device_map
        if device_map is not None:
            _check_device_map(device_map, torch)
        if device_map is None and (self.quantize or torch.cuda.is_available()):
            device_map = "auto"
        if device_map is not None:
            kwargs["device_map"] = device_map
        if self.quantize:
            kwargs["quantization_config"] = self._quantization_config()

        auto = transformers.AutoModelForImageTextToText
        if type(self._config) not in getattr(auto, "_model_mapping", {}):  # a family known to another auto class
            arch = (getattr(self._config, "architectures", None) or [None])[0]
            auto = getattr(transformers, arch or "", None)
            if auto is None:
                raise ModelUnavailable(f"model '{self.model}' ({self._config.model_type}) is not an image-text-to-text "
                                       "model that transformers knows; pick a vision-language model")
        model = self._from_pretrained(auto, **kwargs)
        return model.eval()

    def _from_pretrained(self, cls, **kwargs):
        """`cls.from_pretrained(self.model)`, offline unless allowed; failures become ModelUnavailable."""
        self._hub_env()
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        location = self.model
        if _looks_like_path(location) and not Path(location).expanduser().is_dir():
            what = "is a file, not a folder" if Path(location).expanduser().exists() else "does not exist"
            raise ModelUnavailable(f"model folder '{location}' {what}; point -m at a folder holding "
                                   "config.json and the weights, or give a Hugging Face model name")
        if Path(location).expanduser().is_dir():
            location = str(Path(location).expanduser())
        try:
            return cls.from_pretrained(location, local_files_only=not self.allow_download, **kwargs)
        except ModelUnavailable:
            raise
        except Exception as e:  # noqa: BLE001 - OSError, ValueError (names the hub refuses, e.g. 'a/b/c'), and
            # what the weight readers raise for a damaged file: SafetensorError, pickle and size-mismatch errors
            raise ModelUnavailable(self._unavailable_message(e)) from None

    def _hub_env(self) -> None:
        """Offline unless --allow-download; set before huggingface_hub is imported (it reads HF_HUB_OFFLINE
        once, at import; local_files_only covers the case where it came first)."""
        if not self.allow_download:
            os.environ["HF_HUB_OFFLINE"] = os.environ["TRANSFORMERS_OFFLINE"] = "1"
        else:
            from index.embed_models import allow_hub_downloads

            allow_hub_downloads()

    def _check_cached(self) -> None:
        """A hub model missing from the local cache fails here, before importing transformers (seconds):
        `ask` without a model prints its evidence at the speed of a search."""
        if self.allow_download or _looks_like_path(self.model) or Path(self.model).expanduser().is_dir():
            return
        try:
            from huggingface_hub import constants  # 0.02 s; its file_download module takes 0.5 s

            repo = Path(constants.HF_HUB_CACHE) / f"models--{self.model.replace('/', '--')}"
        except Exception:
            return  # transformers says what is wrong
        if not any(repo.glob("snapshots/*/config.json")):
            raise ModelUnavailable(self._unavailable_message(FileNotFoundError("not in the local cache")))

    def _unavailable_message(self, error: Exception) -> str:
        name = self.model
        detail = f"{type(error).__name__}: {str(error).strip().splitlines()[0][:200] if str(error).strip() else ''}"
        if Path(name).expanduser().is_dir():
            return (f"cannot load the model in folder '{name}' ({detail}); it should hold a transformers "
                    "checkpoint: config.json, the weights and the processor files")
        if not self.allow_download:
            return (f"model '{name}' is not in the local Hugging Face cache and pagerag does not download by "
                    f"default: run `hf download {name}` (gated models need `hf auth login` and accepting the "
                    "licence on its hub page), pass --allow-download, or point -m at a local folder")
        offline = "; HF_HUB_OFFLINE is set in the environment, unset it to download" if _hub_offline() else ""
        return (f"cannot download model '{name}' ({detail}){offline}. Check the name and the network; gated "
                f"models need `hf auth login` and accepting the licence on its hub page; or point -m at a local folder")

    def _check_quantization(self) -> None:
        import torch

        if not torch.cuda.is_available():
            raise ModelUnavailable(f"{self.quantize} quantization needs a CUDA GPU (bitsandbytes) and none is "
                                   "available here: drop --quantize (and pick --dtype), or run on a machine with CUDA")
        if importlib.util.find_spec("bitsandbytes") is None:
            raise ModelUnavailable(f"{self.quantize} quantization needs bitsandbytes: `pip install bitsandbytes`, "
                                   "or drop --quantize")

    def _quantization_config(self):
        import torch
        from transformers import BitsAndBytesConfig

        if self.quantize == "4bit":
            compute = torch.float16 if self.dtype == "float16" else torch.bfloat16
            return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                      bnb_4bit_compute_dtype=compute, bnb_4bit_use_double_quant=True)
        skip = list(self.quirks.int8_skip_modules) or None  # None: transformers' own choice
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=skip)

    # -- prompting -----------------------------------------------------------------------

    def conversation(self, messages: list[dict], images: list | None = None) -> list[dict]:
        """`messages` as the processor takes them: content as a list of parts, each bare
        {"type": "image"} part given the next of `images` (when given), the family's quirks
        applied. The input is not modified.

        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Q"}]}], [img]
        -> [{"role": "user", "content": [{"type": "image", "image": img}, {"type": "text", "text": "Q"}]}]
        """
        quirks = self.quirks
        pending = list(images) if images is not None else None
        out = []
        for message in messages:
            content = message.get("content")
            if content is None:
                content = []
            elif isinstance(content, str):
                content = [{"type": "text", "text": content}]
            parts = []
            for part in content:
                part = dict(part)
                bare = part.get("type") == "image" and not any(k in part for k in IMAGE_SOURCE_KEYS)
                if bare and pending is not None:
                    if not pending:
                        raise ValueError("the messages have more {'type': 'image'} parts than images were given")
                    part["image"] = _as_image(pending.pop(0))
                parts.append(part)
            if quirks.images_first:
                parts = [p for p in parts if p.get("type") == "image"] + [p for p in parts if p.get("type") != "image"]
            out.append({**message, "content": parts})
        if pending:
            raise ValueError(f"{len(pending)} image(s) given beyond the {{'type': 'image'}} parts of the messages")
        if quirks.no_system_with_images:
            out = _fold_system_into_user(out)
        return out

    def prompt_text(self, messages: list[dict]) -> str:
        """The text the model sees for `messages` (chat template applied, generation prompt added).
        Loads only the config and the processor, not the weights."""
        conversation = self.conversation(messages)  # loads the processor
        return self._processor.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)

    def inputs(self, messages: list[dict], images: list):
        """The model inputs (input_ids, pixel values, ...) for `messages` and `images`, on the model's device."""
        conversation = self.conversation(messages, images)
        # tokenize=True: the processor sees a template that starts with BOS and adds no second one
        inputs = self._processor.apply_chat_template(conversation, add_generation_prompt=True, tokenize=True,
                                                     return_dict=True, return_tensors="pt")
        self.last_input_ids = inputs["input_ids"][0].tolist()
        if self._model is not None:  # floating tensors (pixel values) take the model's dtype too
            inputs = inputs.to(self._model.device, self._model.dtype)
        return inputs

    # -- generation ----------------------------------------------------------------------

    def stream(self, messages: list[dict], images: list, options: GenerationOptions) -> Iterator[str]:
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        self.load()
        inputs = self.inputs(messages, images)
        streamer = TextIteratorStreamer(self._processor.tokenizer, skip_prompt=True, skip_special_tokens=True)
        cancelled = threading.Event()

        class _Cancelled(StoppingCriteria):  # the reader stopped early: stop generating too
            def __call__(self, input_ids, scores, **kwargs):
                import torch

                return torch.full((input_ids.shape[0],), cancelled.is_set(), dtype=torch.bool, device=input_ids.device)

        if options.temperature and options.temperature > 0:
            sampling = {"do_sample": True, "temperature": float(options.temperature)}
        else:  # greedy, whatever the checkpoint's generation_config says
            sampling = {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        failure: list[BaseException] = []
        produced: list[int] = []  # new tokens generated
        self.finish_reason = None

        def run():
            try:
                out = self._model.generate(**inputs, **sampling, max_new_tokens=options.max_new_tokens,
                                           streamer=streamer, stopping_criteria=StoppingCriteriaList([_Cancelled()]))
                produced.append(int(out.shape[-1] - inputs["input_ids"].shape[-1]))
            except BaseException as e:  # re-raised in the reader's thread
                failure.append(e)
                streamer.end()

        thread = threading.Thread(target=run, name="pagerag-generate", daemon=True)
        thread.start()
        try:
            for piece in streamer:
                if piece:
                    yield piece
        finally:
            cancelled.set()
            thread.join()
        if failure:
            raise _generation_error(failure[0]) from None
        if produced:
            self.finish_reason = "length" if produced[0] >= options.max_new_tokens else "stop"


DEVICE_MAPS = ("auto", "balanced", "balanced_low_0", "sequential", "cpu", "mps", "cuda")


def _check_device_map(device_map: str, torch) -> None:
    """--device-map: a name accelerate knows, or a device torch here has; ModelUnavailable saying which if not."""
    name = str(device_map).strip()
    base, _, number = name.partition(":")
    if name not in DEVICE_MAPS and not name.isdigit() and not (base == "cuda" and number.isdigit()):
        raise ModelUnavailable(f"--device-map {device_map!r} is not one of {', '.join(DEVICE_MAPS)}, cuda:N or a GPU "
                               "number; leave it out for the default (auto on CUDA, else the CPU)")
    if (base == "cuda" or name.isdigit()) and not torch.cuda.is_available():
        raise ModelUnavailable(f"--device-map {device_map} needs a CUDA GPU and torch here has none (a CPU build, "
                               "or no GPU visible): drop --device-map to run on the CPU")


def _generation_error(error: BaseException) -> BaseException:
    """An error from inside generate() -> ModelUnavailable in words (out of memory says what to lower);
    an interrupt or exit stays what it is."""
    if not isinstance(error, Exception) or isinstance(error, ModelUnavailable):
        return error
    text = str(error).strip().splitlines()[0][:300] if str(error).strip() else type(error).__name__
    if "out of memory" in text.lower() or type(error).__name__ == "OutOfMemoryError":
        return ModelUnavailable(f"the model ran out of memory while answering ({text}): use --quantize 4bit, "
                                "fewer --images, a smaller -k, or a smaller model")
    return ModelUnavailable(f"the model failed while answering ({type(error).__name__}: {text})")


def _as_image(image):
    """A PIL image from a PIL image or a path."""
    if isinstance(image, (str, os.PathLike)):
        from PIL import Image

        with Image.open(image) as opened:
            return opened.convert("RGB")
    return image


def _fold_system_into_user(conversation: list[dict]) -> list[dict]:
    """Move a leading system turn's text into the first user turn, after its images, when the
    conversation has images (Llama 3.2-Vision's template refuses a system turn beside them)."""
    has_images = any(p.get("type") == "image" for m in conversation for p in m["content"])
    if not has_images or not conversation or conversation[0].get("role") != "system":
        return conversation
    system_text = "".join(p.get("text", "") for p in conversation[0]["content"] if p.get("type") == "text").strip()
    rest = conversation[1:]
    if not system_text:
        return rest
    for i, message in enumerate(rest):
        if message.get("role") == "user":
            parts = message["content"]
            n_images = 0
            while n_images < len(parts) and parts[n_images].get("type") == "image":
                n_images += 1
            parts = parts[:n_images] + [{"type": "text", "text": system_text + "\n\n"}] + parts[n_images:]
            return rest[:i] + [{**message, "content": parts}] + rest[i + 1:]
    return rest


def _looks_like_path(name: str) -> bool:
    """True for what cannot be a hub name ('owner/name' or 'name'): './x', '/x', '~/x', 'a/b/c'."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name


def _hub_offline() -> bool:
    try:
        from huggingface_hub import constants
    except ImportError:
        return False
    return bool(constants.HF_HUB_OFFLINE)
