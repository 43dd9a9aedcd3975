"""Images against the pixel limit: a JPEG over it is decoded reduced to fit, anything else over it refused,
and a file claiming more pixels than its bytes can hold (a decompression bomb) refused before decoding.

    with open_image(path) as img:
        factor = reduction(img, path.stat().st_size, Limits())   # 1, 2, 4 or 8, or BadInput
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .errors import BadInput

if TYPE_CHECKING:
    from .sources import Limits

# libjpeg decodes a JPEG at 1/2, 1/4 or 1/8 of its size from its DCT coefficients, for a fraction of the work:
# a JPEG over the pixel limit (a 600 dpi poster scan) is read at the largest of those sizes under it
JPEG_REDUCTIONS = (2, 4, 8)
# a JPEG's coded data costs at least ~2 bits per 8x8 block (a blank page with optimised Huffman tables: 255
# pixels a byte, measured); a file claiming 4x that many pixels for its size is a decompression bomb
MAX_JPEG_PIXELS_PER_BYTE = 1024


def open_image(path: Path):
    """Image.open; a JPEG past Pillow's own decompression-bomb limit is opened too (its header only), and
    left to ours (`reduction`)."""
    from PIL import Image

    try:
        return Image.open(path)
    except Image.DecompressionBombError:
        from PIL import JpegImagePlugin

        try:
            return JpegImagePlugin.JpegImageFile(path)
        except Exception:  # not a JPEG: Pillow's refusal stands
            pass
        raise


def reduction(img, file_bytes: int, limits: Limits) -> int:
    """1 when the opened image (its current frame) is within the pixel limit; else the factor (2, 4 or 8) a
    JPEG is decoded smaller by to fit it: a 16000x12000 scan (192 MP) with the 180 MP limit -> 2 (8000x6000).
    Raises BadInput for any other image over the limit, and for a JPEG claiming more pixels than its bytes
    can code (a decompression bomb), before anything is decoded."""
    w, h = img.size
    if w * h <= limits.max_pixels:
        return 1
    if img.format not in ("JPEG", "MPO") or len(img.tile) != 1:
        raise BadInput(too_large(w, h, limits))
    if w * h > file_bytes * MAX_JPEG_PIXELS_PER_BYTE:
        raise BadInput(f"image is too large to open safely: it claims {w}×{h} px in {file_bytes:,} bytes "
                       "(a decompression bomb)")
    for factor in JPEG_REDUCTIONS:
        if -(-w // factor) * -(-h // factor) <= limits.max_pixels:
            return factor
    raise BadInput(too_large(w, h, limits))


def too_large(w: int, h: int, limits: Limits) -> str:
    return f"image is {w}×{h} px, over the {limits.max_pixels:,}-pixel limit"
