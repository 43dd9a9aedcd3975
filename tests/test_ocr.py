"""OCR engine settings: the size Tesseract reads at, language lists."""
import pytest

from index.errors import OcrUnavailable
from index.ocr import MAX_OCR_SIDE, MIN_TESSERACT_SIDE, _fit, resolve_lang


@pytest.mark.parametrize("size, min_side, expected", [
    ((1400, 1800), MIN_TESSERACT_SIDE, (1556, 2000)),     # enlarged to the nominal size
    ((400, 500), MIN_TESSERACT_SIDE, (600, 750)),         # enlarged at most 1.5x
    ((1700, 2200), MIN_TESSERACT_SIDE, (1700, 2200)),     # a letter page at 200 dpi: as is
    ((6800, 4000), MIN_TESSERACT_SIDE, (MAX_OCR_SIDE, 2000)),  # too large: reduced
    ((762, 1000), 0, (762, 1000)),                        # RapidOCR: never enlarged
])
def test_fit(size, min_side, expected):
    from PIL import Image

    image, scale = _fit(Image.new("RGB", size, "white"), min_side)
    assert image.size == expected
    assert scale == pytest.approx(expected[0] / size[0], rel=1e-3)


def test_rapidocr_reads_english_only():
    assert resolve_lang("rapidocr", "eng") == "eng"
    with pytest.raises(OcrUnavailable, match="tesseract-ocr-deu"):
        resolve_lang("rapidocr", "deu+eng")
