"""Scanner and phone-camera simulation for the sample corpus: rasterise a
laid-out page, then add skew, blur, paper tint, uneven light, vignetting and
noise; encode JPEG (optionally with EXIF) and write bytes to disk.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pymupdf
from PIL import Image, ImageFilter

from sample_layout import DPI


def render(page, dpi=DPI) -> Image.Image:
    pix = page.get_pixmap(dpi=dpi, colorspace=pymupdf.csRGB, alpha=False)
    return Image.frombytes("RGB", (pix.width, pix.height), pix.samples)


def scan(page, seed: int, angle: float, gray=True, noise=7.0,
         tint=(246, 242, 230), blur=0.5) -> Image.Image:
    """Flatbed-scan look: slight skew, optical blur, paper tint, uneven light, noise."""
    rng = np.random.RandomState(seed)
    img = render(page)
    if blur:
        img = img.filter(ImageFilter.GaussianBlur(blur))
    img = img.rotate(angle, resample=Image.BICUBIC, expand=True, fillcolor=(255, 255, 255))
    a = np.asarray(img).astype(np.float32)
    h, w = a.shape[:2]
    a *= np.array(tint, np.float32) / 255.0
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    gx, gy = rng.uniform(-0.05, 0.05, size=2)
    shade = 1.0 + gx * (xx / w - 0.5) + gy * (yy / h - 0.5)
    a *= shade[..., None]
    a += rng.normal(0.0, noise, size=(h, w)).astype(np.float32)[..., None]
    img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB")
    return img.convert("L") if gray else img


def phone_photo(page, seed: int, angle: float) -> Image.Image:
    """Phone-photo look: page lying on a darker desk, skewed, vignetted, warm light."""
    rng = np.random.RandomState(seed)
    img = render(page).filter(ImageFilter.GaussianBlur(0.6))
    paper = (250, 246, 236)
    img = img.rotate(angle, resample=Image.BICUBIC, expand=True, fillcolor=paper)
    a = np.asarray(img).astype(np.float32) * (np.array(paper, np.float32) / 255.0)
    ph, pw = a.shape[:2]
    m = 70  # desk border around the sheet, in pixels
    desk = np.empty((ph + 2 * m, pw + 2 * m, 3), np.float32)
    desk[:] = (96, 82, 68)
    desk[m:m + ph, m:m + pw] = a
    h, w = desk.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((xx / w - 0.48) / 0.62) ** 2 + ((yy / h - 0.45) / 0.70) ** 2
    vignette = np.clip(1.0 - 0.42 * r2, 0.55, 1.0)
    desk *= vignette[..., None]
    desk *= np.array((1.0, 0.97, 0.90), np.float32)        # warm indoor light
    desk += rng.normal(0.0, 7.0, size=(h, w)).astype(np.float32)[..., None]
    return Image.fromarray(np.clip(desk, 0, 255).astype(np.uint8), "RGB")


def jpeg_bytes(img: Image.Image, quality=65, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality, dpi=(DPI, DPI), optimize=True, **kw)
    return buf.getvalue()


def write_bytes(path: Path, data: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
