"""The OpenAI chat format on the wire: transformers-style messages and PIL images -> OpenAI messages.

    to_openai_messages([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Total?"}]}],
                       [page], image_data_url)
    -> [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,..."}},
                                      {"type": "text", "text": "Total?"}]}]
"""
from __future__ import annotations

import base64
import io
from typing import Callable


def to_openai_messages(messages: list[dict], images: list, encode: Callable[[object], str]) -> list[dict]:
    """transformers chat messages and their images -> OpenAI messages with the images in place.

    [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Total?"}]}], [page]
    -> [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": encode(page)}},
                                      {"type": "text", "text": "Total?"}]}]

    A message without images gets its text as one string, the form every server accepts.
    """
    converted, used = [], 0
    for message in messages:
        content = message.get("content", "")
        if isinstance(content, str):
            converted.append({"role": message["role"], "content": content})
            continue
        parts = []
        for entry in content:
            kind = entry.get("type")
            if kind == "text":
                parts.append({"type": "text", "text": entry["text"]})
            elif kind == "image":
                if used >= len(images):
                    raise ValueError(f"the messages have more image entries than the {len(images)} images given")
                parts.append({"type": "image_url", "image_url": {"url": encode(images[used])}})
                used += 1
            else:
                raise ValueError(f"unknown content entry type {kind!r}; expected 'image' or 'text'")
        if all(part["type"] == "text" for part in parts):
            converted.append({"role": message["role"], "content": "".join(part["text"] for part in parts)})
        else:
            converted.append({"role": message["role"], "content": parts})
    if used != len(images):
        raise ValueError(f"{len(images)} images given but the messages have {used} image entries")
    return converted


def image_data_url(image, max_side: int | None = 1600, image_format: str = "jpeg") -> str:
    """A PIL image as a data URL, its long side at most `max_side`: 3200x1000 -> a 1600x500 JPEG."""
    from PIL import Image

    if image.mode in HIGH_DEPTH:
        image = to_8bit(image)
    if max_side and max(image.size) > max_side:
        image = image.copy()
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    has_alpha = "A" in image.getbands() or "transparency" in image.info
    if image_format == "png":
        if image.mode not in ("1", "L", "LA", "RGB", "RGBA", "P"):
            image = image.convert("RGBA" if has_alpha else "RGB")
        buffer, mime = io.BytesIO(), "image/png"
        image.save(buffer, format="PNG")
    else:
        if has_alpha:  # JPEG has no alpha: put transparent parts on white paper, not black
            rgba = image.convert("RGBA")
            image = Image.new("RGB", rgba.size, "white")
            image.paste(rgba, mask=rgba.getchannel("A"))
        elif image.mode not in ("L", "RGB"):
            image = image.convert("RGB")
        buffer, mime = io.BytesIO(), "image/jpeg"
        image.save(buffer, format="JPEG", quality=90)
    return f"data:{mime};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"


HIGH_DEPTH = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")  # grey modes beyond 8 bits


def to_8bit(image):
    """A 16- or 32-bit grey image scaled onto 0..255 by its own range: convert("L") would clip it,
    and a 16-bit scan whose paper is at 50000 would go as a white page. [0, 30000, 60000] -> [0, 127, 255]."""
    grey = image.convert("F")
    low, high = grey.getextrema()
    scale = 255.0 / (high - low) if high > low else 0.0
    return grey.point(lambda v: (v - low) * scale).convert("L")
