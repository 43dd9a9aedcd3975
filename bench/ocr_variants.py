"""The OCR variants the quality ablation compares: each a top-level `fn(path) -> words`."""
from __future__ import annotations

from pathlib import Path

_engines: dict = {}


def _engine(name: str, **kw):
    key = (name, tuple(sorted(kw.items())))
    if key not in _engines:
        from index.ocr import load_engine

        _engines[key] = load_engine(name, threads=1, **kw)
    return _engines[key]


def _image(path: str):
    from index.sources import kind_of, read_image

    return read_image(Path(path), kind_of(Path(path)), 1, 200)


def tesseract(path: str):
    return _engine("tesseract").recognize(_image(path))


def rapidocr(path: str):
    return _engine("rapidocr").recognize(_image(path))


VARIANTS = {"tesseract": tesseract, "rapidocr": rapidocr}
