"""Reading files into pages: kinds, page counts, titles, EXIF orientation, text layers."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from index.errors import UnsupportedFile
from index.sources import humanize, probe, read_image, read_text_layer, walk


def test_exif_orientation_is_applied(sample_corpus):
    letter = sample_corpus / "letters/pinecrest-rent-increase-notice.jpg"
    from PIL import Image

    assert Image.open(letter).size == (1824, 1459)  # stored sideways, EXIF Orientation 6
    assert read_image(letter, "image", 1, 200).size == (1459, 1824)


def phone_photo_exif(orientation: int) -> bytes:
    """An EXIF block as phones write it, with one entry whose data lies past the block's end (as a
    maker note's often does once an editor has cut it): Pillow warns about it on every open."""
    import struct

    entries = struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack("<HHII", 0x010E, 2, 400, 5000)
    return b"Exif\0\0II*\0" + struct.pack("<IH", 8, 2) + entries + b"\0\0\0\0"


def test_a_photos_broken_exif_is_read_without_warnings_on_stderr(tmp_path):
    """The orientation is still applied; Pillow's 'Tag data larger than file' stays off stderr (a build,
    `show` and the web app printed it two or three times per photo)."""
    from PIL import Image

    photo = tmp_path / "IMG_0001.jpg"
    Image.new("RGB", (120, 80), "white").save(photo, exif=phone_photo_exif(6))
    script = ("import sys; from pathlib import Path; from index.sources import probe, read_image; "
              "p = Path(sys.argv[1]); probe(p, p.parent); print(read_image(p, 'image', 1, 200).size)")
    done = subprocess.run([sys.executable, "-c", script, str(photo)], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).parent.parent, env={**os.environ, "PYTHONWARNINGS": ""})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(80, 120)"  # EXIF Orientation 6 applied: stored 120x80, upright 80x120
    assert done.stderr == ""


def test_probe_counts_pages_and_titles(sample_corpus):
    tiff = probe(sample_corpus / "reports/minutes-2024-q1.tif", sample_corpus)
    assert (tiff.kind, tiff.n_pages, tiff.title) == ("tiff", 3, "reports / minutes 2024 q1")
    report = probe(sample_corpus / "reports/harbor-city-water-annual-report-2023.pdf", sample_corpus)
    assert report.n_pages == 4 and report.title.startswith("Harbor City Water Authority")
    assert report.title.endswith("(reports / harbor city water annual report 2023)")


def test_text_layer_is_used_only_when_present(sample_corpus):
    words, (w, h) = read_text_layer(sample_corpus / "reports/harbor-city-water-annual-report-2023.pdf", 3)
    assert any(wd.text == "$52.7" for wd in words) and 0 <= words[0].x0 < words[0].x1 <= 1
    assert read_text_layer(sample_corpus / "warranties/thermavale-heat-pump-warranty.pdf", 1) is None


def test_gif_frames_are_pages_and_transparency(tmp_path):
    from PIL import Image

    frames = [Image.new("RGBA", (40, 30), (255, 0, 0, 0)), Image.new("RGBA", (40, 30), (0, 0, 255, 255))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    info = probe(tmp_path / "anim.gif", tmp_path)
    assert info.n_pages == 2  # every frame is a page, as with TIFF
    assert read_image(tmp_path / "anim.gif", "image", 1, 200).getpixel((5, 5)) == (255, 255, 255)
    assert read_image(tmp_path / "anim.gif", "image", 2, 200).getpixel((5, 5)) == (0, 0, 255)


def test_walk_skips_hidden_and_sorts(tmp_path):
    for name in ("b.png", "a/c.pdf", ".hidden/d.png", "a/.e.jpg"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert [str(f.relative_to(tmp_path)) for f, _ in walk([tmp_path])] == ["b.png", "a/c.pdf"]
    with pytest.raises(UnsupportedFile, match="'.txt'"):
        probe(Path(__file__).with_suffix(".txt"), tmp_path)


def test_humanize():
    assert humanize(Path("/d/reports/annual_report-2018.pdf"), Path("/d")) == "reports / annual report 2018"
    assert humanize(Path("/d/scan.png"), Path("/d")) == "d / scan"
