"""The transformers backend on tiny random Mllama and LLaVA checkpoints built in the test session."""
from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass

import pytest

from rag.backends import GenerationOptions, ModelUnavailable, get_backend

os.environ.setdefault("HF_HUB_OFFLINE", "1")

GREEDY = GenerationOptions(max_new_tokens=12, temperature=0.0)


@dataclass(frozen=True)
class Family:
    name: str
    bos: str
    image_token: str
    tokens_per_image: int  # placeholders the processor puts in the ids for one image
    first_user_header: str  # what precedes the first user turn's content in the prompt text


FAMILIES = {
    "mllama": Family("mllama", "<|begin_of_text|>", "<|image|>", 1,
                     "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"),
    "llava": Family("llava", "<s>", "<image>", 4, "<|user|>\n"),
}


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one thread is ~20x faster here


@pytest.fixture(scope="session")
def backends(tiny_folders) -> dict:
    """One loaded backend per family for the session: loading is the slow part."""
    loaded = {}
    for name, folder in tiny_folders.items():
        backend = get_backend("transformers")(str(folder))
        backend.load()
        loaded[name] = backend
    return loaded


@pytest.fixture(params=sorted(FAMILIES))
def family(request, backends):
    return FAMILIES[request.param], backends[request.param]


def page(color: str, size=(60, 40)):
    from PIL import Image

    return Image.new("RGB", size, color)


def two_turns(layout: str = "pages first") -> tuple[list[dict], list]:
    """A 2-turn conversation about two pages, and its images.

    "pages first": both pages open the first user turn (pagerag's usual prompt), the second
    turn is a text follow-up; "page per turn": one page at the start of each user turn.
    """
    image, text = {"type": "image"}, lambda t: {"type": "text", "text": t}
    if layout == "pages first":
        first, second = [image, image, text("What is the title?")], [text("And the year?")]
    else:
        first, second = [image, text("What is the title?")], [image, text("And the year?")]
    messages = [
        {"role": "user", "content": first},
        {"role": "assistant", "content": [text("Water report.")]},
        {"role": "user", "content": second},
    ]
    return messages, [page("red"), page("blue", (90, 30))]


LAYOUTS = ["pages first", "page per turn"]


# -- with a model ------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("layout", LAYOUTS)
def test_generate_two_turns_two_images_gives_printable_text(family, layout):
    _, backend = family
    messages, images = two_turns(layout)
    text = backend.generate(messages, images, GREEDY)
    assert text.strip() and text.isprintable() and text.isascii()
    assert backend.generate(messages, images, GREEDY) == text  # greedy, although the checkpoint asks to sample


@pytest.mark.slow
@pytest.mark.parametrize("layout", LAYOUTS)
def test_prompt_has_one_bos_and_images_first(family, layout):
    fam, backend = family
    messages, images = two_turns(layout)
    backend.generate(messages, images, GenerationOptions(max_new_tokens=1))
    tokenizer = backend._processor.tokenizer
    ids = backend.last_input_ids
    bos_id, image_id = tokenizer.convert_tokens_to_ids([fam.bos, fam.image_token])
    assert ids[0] == bos_id and ids.count(bos_id) == 1
    assert ids.count(image_id) == len(images) * fam.tokens_per_image
    # the first user turn opens with its image(s): BOS, header, then the image placeholders
    header_ids = tokenizer(fam.first_user_header, add_special_tokens=False)["input_ids"]
    if header_ids[:1] != [bos_id]:
        header_ids = [bos_id] + header_ids
    assert ids[:len(header_ids)] == header_ids
    assert ids[len(header_ids)] == image_id
    leading = []  # image placeholders before the first turn's first word
    for token in ids[len(header_ids):]:
        if token == image_id:
            leading.append(token)
        elif tokenizer.decode([token]).strip():
            break
    first_turn_images = 2 if layout == "pages first" else 1
    assert len(leading) == first_turn_images * fam.tokens_per_image


@pytest.mark.slow
@pytest.mark.parametrize("name, layout, expected", [
    ("mllama", "pages first",
     "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n<|image|><|image|>What is the title?<|eot_id|>"
     "<|start_header_id|>assistant<|end_header_id|>\n\nWater report.<|eot_id|>"
     "<|start_header_id|>user<|end_header_id|>\n\nAnd the year?<|eot_id|>"
     "<|start_header_id|>assistant<|end_header_id|>\n\n"),
    ("mllama", "page per turn",
     "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n<|image|>What is the title?<|eot_id|>"
     "<|start_header_id|>assistant<|end_header_id|>\n\nWater report.<|eot_id|>"
     "<|start_header_id|>user<|end_header_id|>\n\n<|image|>And the year?<|eot_id|>"
     "<|start_header_id|>assistant<|end_header_id|>\n\n"),
    ("llava", "pages first",
     "<|user|>\n<image>\n<image>\nWhat is the title?<|end|>\n<|assistant|>\nWater report.<|end|>\n"
     "<|user|>\nAnd the year?<|end|>\n<|assistant|>\n"),
    ("llava", "page per turn",
     "<|user|>\n<image>\nWhat is the title?<|end|>\n<|assistant|>\nWater report.<|end|>\n"
     "<|user|>\n<image>\nAnd the year?<|end|>\n<|assistant|>\n"),
])
def test_prompt_text_exact(backends, name, layout, expected):
    messages, _ = two_turns(layout)
    assert backends[name].prompt_text(messages) == expected


@pytest.mark.slow
def test_prompt_text_does_not_load_the_weights(tiny_folders):
    backend = get_backend("transformers")(str(tiny_folders["mllama"]))
    assert backend.prompt_text([{"role": "user", "content": "Hello"}]) == (
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n")
    assert backend._model is None


@pytest.mark.slow
def test_mllama_quirks_images_first_and_no_system_turn_beside_images(backends):
    """Llama 3.2-Vision: text before an image leaks into it, and its template refuses a system turn
    beside images; the backend moves images first and folds the system text into the user turn."""
    messages = [
        {"role": "system", "content": "Answer from the page."},
        {"role": "user", "content": [{"type": "text", "text": "Who signed?"}, {"type": "image"}]},
    ]
    assert backends["mllama"].prompt_text(messages) == (
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n<|image|>Answer from the page.\n\n"
        "Who signed?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
    text = backends["mllama"].generate(messages, [page("red")], GREEDY)
    assert text.isprintable() and text.strip()
    # LLaVA (phi-3 template) keeps the system turn
    assert backends["llava"].prompt_text(messages).startswith("<|system|>\nAnswer from the page.<|end|>\n")


@pytest.mark.slow
def test_stream_yields_the_same_text_as_generate(family):
    _, backend = family
    messages, images = two_turns()
    pieces = list(backend.stream(messages, images, GREEDY))
    assert all(pieces)  # the streamer holds text back to the last space, so gibberish may come in one piece
    assert "".join(pieces) == backend.generate(messages, images, GREEDY)
    # and the same as transformers' own greedy generate, decoded at once
    inputs = backend.inputs(messages, images)
    out = backend._model.generate(**inputs, do_sample=False, max_new_tokens=GREEDY.max_new_tokens)
    new = out[0, inputs["input_ids"].shape[1]:]
    assert "".join(pieces) == backend._processor.tokenizer.decode(new, skip_special_tokens=True)


@pytest.mark.slow
def test_output_depends_on_the_image(family):
    _, backend = family
    messages, _ = two_turns()
    red = backend.generate(messages, [page("red"), page("red")], GREEDY)
    blue = backend.generate(messages, [page("blue"), page("blue")], GREEDY)
    assert red != blue


@pytest.mark.slow
def test_temperature_samples(backends):
    import torch

    backend = backends["mllama"]
    messages, images = two_turns()
    torch.manual_seed(0)
    sampled = backend.generate(messages, images, GenerationOptions(max_new_tokens=12, temperature=1.5))
    torch.manual_seed(0)
    assert backend.generate(messages, images, GenerationOptions(max_new_tokens=12, temperature=1.5)) == sampled
    assert sampled != backend.generate(messages, images, GREEDY)


@pytest.mark.slow
def test_stopping_the_reader_stops_generation(backends):
    backend = backends["llava"]
    messages, images = two_turns()
    stream = backend.stream(messages, images, GenerationOptions(max_new_tokens=2000))
    start = time.monotonic()
    assert next(stream)
    stream.close()  # joins the generating thread, which must notice and stop
    assert time.monotonic() - start < 5


@pytest.mark.slow
def test_generation_errors_reach_the_reader(backends, monkeypatch):
    backend = backends["llava"]

    def broken(**kwargs):
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(backend._model, "generate", broken)
    messages, images = two_turns()
    with pytest.raises(ModelUnavailable, match="ran out of memory while answering .CUDA out of memory.: use"):
        backend.generate(messages, images, GREEDY)  # one line for the user, not a traceback from a thread

    def failing(**kwargs):
        raise ValueError("Input length of input_ids is 9000, but `max_length` is set to 2048")

    monkeypatch.setattr(backend._model, "generate", failing)
    with pytest.raises(ModelUnavailable, match="the model failed while answering .ValueError: Input length"):
        backend.generate(messages, images, GREEDY)


@pytest.mark.slow
def test_finish_reason_tells_an_answer_cut_at_max_new_tokens(backends):
    backend = backends["llava"]  # the tiny models never emit their end token: every reply runs to the limit
    messages, images = two_turns()
    backend.generate(messages, images, GREEDY)
    assert backend.finish_reason == "length"


@pytest.mark.parametrize("device_map, said", [("cuda", "needs a CUDA GPU"), ("cuda:1", "needs a CUDA GPU"),
                                              ("bogus{", "is not one of auto")])
def test_a_device_map_this_machine_cannot_use_is_one_line(device_map, said):
    import torch

    from rag.backends.hf import _check_device_map

    if torch.cuda.is_available() and said == "needs a CUDA GPU":
        pytest.skip("this machine has CUDA")
    with pytest.raises(ModelUnavailable, match=said):
        _check_device_map(device_map, torch)


@pytest.mark.slow
def test_bfloat16(tiny_folders):
    import torch

    backend = get_backend("transformers")(str(tiny_folders["llava"]), dtype="bfloat16")
    messages, images = two_turns()
    text = backend.generate(messages, images, GREEDY)
    assert backend._model.dtype == torch.bfloat16
    assert text.strip() and text.isprintable()


@pytest.mark.slow
@pytest.mark.parametrize("n_images, error", [
    (1, "more {'type': 'image'} parts than images"),
    (3, "1 image(s) given beyond"),
])
def test_image_count_must_match_the_messages(backends, n_images, error):
    messages, _ = two_turns()
    with pytest.raises(ValueError, match=re.escape(error)):
        backends["llava"].generate(messages, [page("red")] * n_images, GREEDY)


@pytest.mark.slow
def test_messages_are_not_modified(backends):
    messages, images = two_turns()
    before = repr(messages)
    backends["mllama"].generate(messages, images, GenerationOptions(max_new_tokens=1))
    assert repr(messages) == before


# -- without a model ---------------------------------------------------------------------


def test_registered_and_lazy():
    from rag.backends.hf import TransformersBackend

    cls = get_backend("transformers")
    assert cls is TransformersBackend and cls.name == "transformers"
    assert cls.default_model == "meta-llama/Llama-3.2-11B-Vision-Instruct"
    assert cls().model == cls.default_model
    cls("pagerag-tests/no-such-model")  # nothing is looked up before first use


def test_missing_model_fails_fast_with_how_to_get_it():
    backend = get_backend("transformers")("pagerag-tests/no-such-model")
    start = time.monotonic()
    with pytest.raises(ModelUnavailable) as info:
        backend.generate([{"role": "user", "content": "hi"}], [], GREEDY)
    assert time.monotonic() - start < 10
    assert str(info.value) == (
        "model 'pagerag-tests/no-such-model' is not in the local Hugging Face cache and pagerag does not "
        "download by default: run `hf download pagerag-tests/no-such-model` (gated models need `hf auth login` "
        "and accepting the licence on its hub page), pass --allow-download, or point -m at a local folder")


@pytest.mark.parametrize("location, error", [
    ("{tmp}/absent", "model folder '{tmp}/absent' does not exist"),
    ("{tmp}", "cannot load the model in folder '{tmp}'"),
    ("not/a/hub-name", "model folder 'not/a/hub-name' does not exist"),
])
def test_bad_model_location(tmp_path, location, error):
    backend = get_backend("transformers")(location.format(tmp=tmp_path))
    with pytest.raises(ModelUnavailable) as info:
        backend.load()
    assert str(info.value).startswith(error.format(tmp=tmp_path))


@pytest.mark.parametrize("quantize", ["4bit", "8bit"])
def test_quantize_without_cuda_is_unavailable(quantize):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    backend = get_backend("transformers")("pagerag-tests/no-such-model", quantize=quantize)
    with pytest.raises(ModelUnavailable, match=f"^{quantize} quantization needs a CUDA GPU"):
        backend.load()


@pytest.mark.slow
@pytest.mark.parametrize("name, skipped", [("mllama", ["multi_modal_projector", "lm_head"]),
                                           ("llava", ["multi_modal_projector", "lm_head"])])
def test_8bit_keeps_the_projector_in_16_bits(tiny_folders, monkeypatch, name, skipped):
    """What would go to bitsandbytes on a CUDA machine (none here: only the settings are checked)."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    eight = get_backend("transformers")(str(tiny_folders[name]), quantize="8bit")
    assert eight._quantization_config().llm_int8_skip_modules == skipped
    four = get_backend("transformers")(str(tiny_folders[name]), quantize="4bit")._quantization_config()
    assert four.load_in_4bit and four.bnb_4bit_quant_type == "nf4" and four.bnb_4bit_compute_dtype == torch.bfloat16


@pytest.mark.parametrize("options, error", [
    ({"dtype": "int8"}, "dtype must be one of auto, bfloat16, float16, float32, not 'int8'"),
    ({"quantize": "2bit"}, "quantize must be '4bit', '8bit' or None, not '2bit'"),
    ({"temprature": 0.2}, "unknown option(s) for the transformers backend: temprature"),
])
def test_bad_options(options, error):
    with pytest.raises(ValueError) as info:
        get_backend("transformers")("x", **options)
    assert str(info.value) == error
