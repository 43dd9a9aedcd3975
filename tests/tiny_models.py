"""Tiny, randomly initialised but structurally real vision-language checkpoints for tests.

    folder = build_tiny_mllama(tmp_path / "mllama")        # ~0.3 s, ~1 MB
    processor = AutoProcessor.from_pretrained(folder)
    model = AutoModelForImageTextToText.from_pretrained(folder)

Each folder holds what a hub checkpoint holds: config, weights, generation config, a
byte-level BPE tokenizer trained here on a few KB of English with the family's special
tokens, a chat template in the family's style, and the image processor. The weights are
random (the same ones for the same seed), so replies are gibberish, but every token a
model can emit decodes to printable ASCII: the generation config suppresses byte tokens
that are not printable and all special tokens (so a reply also runs to max_new_tokens).
"""
from __future__ import annotations

from pathlib import Path

# A few KB of plain English to train the tokenizer on; ASCII only, so that every merge
# is printable.
CORPUS = """\
The city council met on Tuesday evening to discuss the budget for the coming year.
The water authority presented its annual report, which showed that the capital budget
had grown by twelve percent. Members asked why the parking lot near the library was
still closed, and the clerk said the decision would be made in the spring.
A tenant wrote to the housing office about a rent increase of five percent. The letter
was dated the third of March and signed by the tenant and two neighbours.
Invoices, receipts and forms are scanned every week and stored as images. Each page
has a number, a date and a title. Some pages are tables, some are charts, and some are
letters written by hand. The answer to a question is often found on a single page, but
sometimes it needs two pages read together.
The quick brown fox jumps over the lazy dog. A small model reads the page and answers
the question in one short sentence, citing the page it used. If the page does not say,
the model should say that it does not know.
Revenue for the first quarter was four million dollars, and expenses were three million.
The board approved the plan with seven votes in favour and two against. The meeting
ended at nine o'clock, and the minutes were published on the website the next morning.
Please describe the image. What is written at the top of the page? Which year is shown
in the chart? How many rows does the table have? Who signed the letter?
The report covers roads, bridges, parks, schools, water, power and public transport.
Each section begins with a summary, followed by figures and a list of open questions.
"""

# Llama 3 special tokens in their real order (ids 128000..), then <|image|> last, whose id
# is the text model's vocab_size, as in Llama 3.2-Vision.
LLAMA3_SPECIALS = [
    "<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
    "<|finetune_right_pad_id|>", "<|step_id|>", "<|start_header_id|>", "<|end_header_id|>",
    "<|eom_id|>", "<|eot_id|>", "<|python_tag|>",
]
MLLAMA_IMAGE = "<|image|>"

# Phi-3 special tokens (llava-phi-3 keeps them), then the LLaVA image placeholder.
PHI3_SPECIALS = ["<unk>", "<s>", "</s>", "<|endoftext|>", "<|assistant|>", "<|system|>", "<|end|>", "<|user|>"]
LLAVA_IMAGE = "<image>"

# Llama 3.2-Vision's template, in its logic: BOS; a system turn only without images (the
# real one refuses a system message next to images); one header per turn; an image entry
# becomes <|image|> where it stands; each turn ends with <|eot_id|>.
MLLAMA_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% set ns = namespace(system='', has_images=false) %}"
    "{% for message in messages %}{% if message['content'] is not string %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}{% set ns.has_images = true %}"
    "{% endif %}{% endfor %}{% endif %}{% endfor %}"
    "{% if messages[0]['role'] == 'system' %}"
    "{% if messages[0]['content'] is string %}{% set ns.system = messages[0]['content'] %}"
    "{% else %}{% for part in messages[0]['content'] %}{% if part['type'] == 'text' %}"
    "{% set ns.system = ns.system + part['text'] %}{% endif %}{% endfor %}{% endif %}"
    "{% set messages = messages[1:] %}{% endif %}"
    "{% if ns.has_images and ns.system %}"
    "{{ raise_exception('Prompting with images is incompatible with system messages.') }}{% endif %}"
    "{% if ns.system %}<|start_header_id|>system<|end_header_id|>\n\n{{ ns.system }}<|eot_id|>{% endif %}"
    "{% for message in messages %}"
    "<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<|image|>{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|eot_id|>"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)

# llava-phi-3's template, in its logic: no BOS (the tokenizer adds it); <|role|> and a
# newline; all of a turn's images first, one "<image>\n" each, then its text; <|end|>.
LLAVA_PHI3_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}<image>\n{% endif %}{% endfor %}"
    "{% for part in message['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}"
    "{% endif %}<|end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def _train_bpe(bos: str, specials: list[str], vocab_size: int = 600):
    """A byte-level BPE trained on CORPUS (256 byte tokens + merges, `vocab_size` in all);
    `specials` get the ids right after, in order; encoding prepends `bos` as Llama's does."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(CORPUS.splitlines(keepends=True), trainer)
    tok.add_special_tokens(specials)
    bos_id = tok.token_to_id(bos)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B:1", special_tokens=[(bos, bos_id)])
    return tok


def _unprintable_ids(tokenizer, specials: list[str], limit: int) -> list[int]:
    """Ids below `limit` that must never be generated: specials, and tokens that do not
    decode to printable ASCII (stray bytes, newlines)."""
    special_ids = set(tokenizer.convert_tokens_to_ids(specials))
    bad = []
    for i in range(limit):
        text = tokenizer.decode([i])
        if i in special_ids or not text or not (text.isascii() and text.isprintable()):
            bad.append(i)
    return bad


def _seed(seed: int) -> None:
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # save_pretrained draws one per call
    torch.manual_seed(seed)


def build_tiny_mllama(folder: Path, seed: int = 0) -> Path:
    """A tiny MllamaForConditionalGeneration (+ MllamaProcessor) saved in `folder`.

    3 text layers (layer 1 cross-attends, its gates open so replies depend on images),
    2+1 vision layers, 28-pixel tiles of 2x2 patches, at most 2 tiles per image.
    """
    from transformers import (
        GenerationConfig,
        MllamaConfig,
        MllamaForConditionalGeneration,
        MllamaImageProcessorPil,
        MllamaProcessor,
        PreTrainedTokenizerFast,
    )

    import torch

    folder = Path(folder)
    specials = LLAMA3_SPECIALS + [MLLAMA_IMAGE]
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=_train_bpe("<|begin_of_text|>", specials),
        bos_token="<|begin_of_text|>", eos_token="<|eot_id|>", pad_token="<|finetune_right_pad_id|>",
        padding_side="left",  # only saved when given to the constructor
    )
    image_id = tokenizer.convert_tokens_to_ids(MLLAMA_IMAGE)
    assert image_id == len(tokenizer) - 1

    tile, patch, max_tiles = 28, 14, 2
    # the model and the image processor must list tile layouts in the same order
    aspect_ratios = [[w, h] for w in range(1, max_tiles + 1) for h in range(1, max_tiles + 1) if w * h <= max_tiles]
    vision_hidden, intermediate_layers = 32, [0]
    ids = tokenizer.convert_tokens_to_ids
    config = MllamaConfig(
        vision_config=dict(
            hidden_size=vision_hidden, intermediate_size=64, num_hidden_layers=2, num_global_layers=1,
            attention_heads=2, image_size=tile, patch_size=patch, max_num_tiles=max_tiles,
            supported_aspect_ratios=aspect_ratios, intermediate_layers_indices=intermediate_layers,
            vision_output_dim=vision_hidden * (1 + len(intermediate_layers)),
        ),
        text_config=dict(
            vocab_size=image_id,  # the embedding gets vocab_size + 8 rows, so <|image|> fits
            hidden_size=64, intermediate_size=128, num_hidden_layers=3, num_attention_heads=4,
            num_key_value_heads=2, cross_attention_layers=[1], max_position_embeddings=2048,
            bos_token_id=ids("<|begin_of_text|>"), eos_token_id=[ids("<|end_of_text|>"), ids("<|eot_id|>")],
            pad_token_id=ids("<|finetune_right_pad_id|>"),
        ),
        image_token_index=image_id,
    )
    _seed(seed)
    model = MllamaForConditionalGeneration(config).eval()
    with torch.no_grad():  # a fresh model's cross-attention gates are shut: it would ignore images
        for layer in model.model.language_model.layers:
            if hasattr(layer, "cross_attn_attn_gate"):
                layer.cross_attn_attn_gate.fill_(1.0)
                layer.cross_attn_mlp_gate.fill_(1.0)
    model.generation_config = GenerationConfig(
        bos_token_id=config.text_config.bos_token_id, eos_token_id=config.text_config.eos_token_id,
        pad_token_id=config.text_config.pad_token_id,
        do_sample=True, temperature=0.6, top_p=0.9,  # as the real checkpoint ships: callers must ask for greedy
        suppress_tokens=_unprintable_ids(tokenizer, specials, limit=image_id),
    )
    model.save_pretrained(folder)

    image_processor = MllamaImageProcessorPil(size={"height": tile, "width": tile}, max_image_tiles=max_tiles)
    MllamaProcessor(image_processor, tokenizer, chat_template=MLLAMA_CHAT_TEMPLATE).save_pretrained(folder)
    return folder


def build_tiny_llava(folder: Path, seed: int = 0) -> Path:
    """A tiny LlavaForConditionalGeneration (CLIP vision + Llama text) + LlavaProcessor in `folder`.

    28-pixel images of 2x2 patches: each <image> becomes 4 image tokens (CLS dropped).
    """
    from transformers import (
        CLIPImageProcessorPil,
        CLIPVisionConfig,
        GenerationConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )

    folder = Path(folder)
    specials = PHI3_SPECIALS + [LLAVA_IMAGE]
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=_train_bpe("<s>", specials),
        bos_token="<s>", eos_token="<|endoftext|>", unk_token="<unk>", pad_token="<|endoftext|>",
        padding_side="left",
    )
    ids = tokenizer.convert_tokens_to_ids
    image_id = ids(LLAVA_IMAGE)

    size, patch = 28, 14
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                       num_attention_heads=2, image_size=size, patch_size=patch,
                                       projection_dim=32).to_dict(),
        text_config=LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                                num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                max_position_embeddings=2048, bos_token_id=ids("<s>"),
                                eos_token_id=[ids("<|end|>"), ids("<|endoftext|>")],
                                pad_token_id=ids("<|endoftext|>")).to_dict(),
        image_token_index=image_id, image_seq_length=(size // patch) ** 2,
        vision_feature_select_strategy="default", vision_feature_layer=-2,
    )
    _seed(seed)
    model = LlavaForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=ids("<s>"), eos_token_id=[ids("<|end|>"), ids("<|endoftext|>")],
        pad_token_id=ids("<|endoftext|>"),
        suppress_tokens=_unprintable_ids(tokenizer, specials, limit=len(tokenizer)),
    )
    model.save_pretrained(folder)

    image_processor = CLIPImageProcessorPil(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
    LlavaProcessor(image_processor, tokenizer, patch_size=patch, vision_feature_select_strategy="default",
                   num_additional_image_tokens=1, image_token=LLAVA_IMAGE,
                   chat_template=LLAVA_PHI3_CHAT_TEMPLATE).save_pretrained(folder)
    return folder
