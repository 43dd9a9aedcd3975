"""The OCR variants the quality ablation compares: each a top-level `fn(path) -> words`."""
from __future__ import annotations

from pathlib import Path

_engines: dict = {}


def _engine(name: str, pipeline: bool = False, **kw):
    """An engine; Tesseract as the earlier variants read (no rule erasing, the inverted retry on every
    page, small scans enlarged to 2000 px) unless asked for, or with all of pagerag's defaults (`pipeline`)."""
    if name == "tesseract" and not pipeline:  # as before this work's rules, inversion choice and 1400 px
        kw.setdefault("rules", False)
        kw.setdefault("invert", True)
        kw.setdefault("min_side", 2000)
    key = (name, tuple(sorted(kw.items())))
    if key not in _engines:
        from index.ocr import ENGINES

        _engines[key] = ENGINES[name](threads=1, **kw)
    return _engines[key]


def _image(path: str):
    from index.sources import kind_of, read_image

    return read_image(Path(path), kind_of(Path(path)), 1, 200)


def _scaled(image, factor: float):
    from PIL import Image

    return image.resize((round(image.width * factor), round(image.height * factor)), Image.LANCZOS)


def baseline(path: str):
    """Tesseract as before this ablation: --psm 3 on the image as read."""
    return _engine("tesseract", psm=3, min_side=0).recognize(_image(path))


def tesseract(path: str):
    """Tesseract as pagerag runs it now (index/pages.py without the orientation check)."""
    engine = _engine("tesseract", pipeline=True)
    return engine.drop_noise(engine.recognize(_image(path)))


def rapidocr(path: str):
    return _engine("rapidocr").recognize(_image(path))


def psm4(path: str):
    return _engine("tesseract", psm=4, min_side=0).recognize(_image(path))


def psm6(path: str):
    return _engine("tesseract", psm=6, min_side=0).recognize(_image(path))


def psm11(path: str):
    return _engine("tesseract", psm=11, min_side=0).recognize(_image(path))


def up2(path: str):
    return _engine("tesseract", psm=3, min_side=0).recognize(_scaled(_image(path), 2))


def up15(path: str):
    return _engine("tesseract", psm=3, min_side=0).recognize(_scaled(_image(path), 1.5))


NOINV = "-c tessedit_do_invert=0"


def noinv(path: str):
    return _engine("tesseract", psm=3, extra=NOINV, min_side=0).recognize(_image(path))


def p6n(path: str):
    return _engine("tesseract", psm=6, extra=NOINV, min_side=0).recognize(_image(path))


def up2n(path: str):
    return _engine("tesseract", psm=3, extra=NOINV, min_side=0).recognize(_scaled(_image(path), 2))


def up2p6n(path: str):
    return _engine("tesseract", psm=6, extra=NOINV, min_side=0).recognize(_scaled(_image(path), 2))


def up15p6n(path: str):
    return _engine("tesseract", psm=6, extra=NOINV, min_side=0).recognize(_scaled(_image(path), 1.5))


def up15n(path: str):
    return _engine("tesseract", psm=3, extra=NOINV, min_side=0).recognize(_scaled(_image(path), 1.5))


def _oriented(path: str, turn: int):
    """The page turned `turn` degrees counter-clockwise at run time, read by the pipeline's read_upright."""
    from index.orient import read_upright

    image = _image(path)
    words, rotation = read_upright(_engine("tesseract", pipeline=True), image.rotate(turn, expand=True) if turn else image)
    return words, {"rotation": rotation}


def orient0(path: str):
    return _oriented(path, 0)


def orient90(path: str):
    return _oriented(path, 90)


def orient180(path: str):
    return _oriented(path, 180)


def orient270(path: str):
    return _oriented(path, 270)


def recheck(path: str):
    """Only what read_upright adds on a page whose first reading looks poor: OSD and the trial readings."""
    from index.orient import candidates, quality, upright

    image = _image(path)
    tried = []
    for rotation in candidates(image):
        turned = upright(image, rotation)
        tried.append((rotation, quality(_engine("tesseract", pipeline=True).recognize(turned), turned.size)[0]))
    return [], {"tried": tried}


def psm3up(path: str):
    """--psm 3 (automatic layout) on every page, small scans enlarged at most 1.5x: pagerag before the
    one-block reading of pages without columns."""
    return _engine("tesseract", psm=3).recognize(_image(path))


VARIANTS = {f.__name__: f for f in (baseline, tesseract, psm3up, rapidocr, psm4, psm6, psm11, up2, up15, noinv, p6n, up2n, up2p6n, up15p6n, up15n,
                                    orient0, orient90, orient180, orient270, recheck)}


def psm6up(path: str):
    """--psm 6 (one block) with the pipeline's enlargement of small scans: the second pass's reading."""
    return _engine("tesseract", psm=6).recognize(_image(path))


VARIANTS["psm6up"] = psm6up


def noinvup(path: str):
    """The pipeline's reading without Tesseract's second try of poorly read lines inverted (white on black)."""
    return _engine("tesseract", psm=3, extra=NOINV).recognize(_image(path))


VARIANTS["noinvup"] = noinvup


def tesseract_noinv(path: str):
    """The pipeline without Tesseract's second try of poorly read lines inverted (white on black)."""
    return _engine("tesseract", extra=NOINV).recognize(_image(path))


VARIANTS["tesseract_noinv"] = tesseract_noinv


def tesseract125n(path: str):
    """The pipeline without the inverted retry, small scans enlarged to a 1250 px long side (FUNSD: 1.25x)."""
    return _engine("tesseract", extra=NOINV, min_side=1250).recognize(_image(path))


VARIANTS["tesseract125n"] = tesseract125n


def psm6cols(path: str):
    """One block unless the page has columns, small scans enlarged at most 1.5x, rules kept: pagerag
    before the rule erasing."""
    return _engine("tesseract").recognize(_image(path))


VARIANTS["psm6cols"] = psm6cols


def rules(path: str):
    """The pipeline's reading (rules erased) without dropping noise words."""
    return _engine("tesseract", pipeline=True).recognize(_image(path))


VARIANTS["rules"] = rules


def rules_inv(path: str):
    """Rules erased, Tesseract's inverted retry on every page (not only those with dark areas), small scans
    enlarged to 2000 px, no noise dropped."""
    return _engine("tesseract", pipeline=True, invert=True, min_side=2000).recognize(_image(path))


VARIANTS["rules_inv"] = rules_inv


def rules_auto(path: str):
    """Rules erased, the inverted retry only on pages with dark areas, small scans enlarged to 2000 px, no noise dropped."""
    return _engine("tesseract", pipeline=True, invert=None, min_side=2000).recognize(_image(path))


VARIANTS["rules_auto"] = rules_auto


def rules_auto125(path: str):
    """rules_auto with small scans enlarged only to a 1250 px long side (FUNSD: 1.25x)."""
    return _engine("tesseract", pipeline=True, invert=None, min_side=1250).recognize(_image(path))


VARIANTS["rules_auto125"] = rules_auto125


def rules_auto140(path: str):
    """rules_auto with small scans enlarged only to a 1400 px long side (FUNSD: 1.4x)."""
    return _engine("tesseract", pipeline=True, invert=None, min_side=1400).recognize(_image(path))


VARIANTS["rules_auto140"] = rules_auto140
