"""A JPEG over the pixel limit read reduced (index.sources.read_image) against decoding it whole.

    nice .venv/bin/python bench/big_jpeg.py                 # a 16000x12500 (200 MP) page scan, ~1 min
    nice .venv/bin/python bench/big_jpeg.py --size 20000x15000

Each read runs in a fresh process (its peak RSS is its own); the baseline is the same read_image with the pixel
limits lifted (ours and Pillow's): the page decoded whole, what it would cost without the reduction.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

CHILD = """
import json, resource, sys, time
from pathlib import Path
from PIL import Image
from index.sources import Limits, read_image
limits = Limits()
if sys.argv[2] == "full":  # the same read with the limits lifted: what the page would cost read whole
    Image.MAX_IMAGE_PIXELS = None
    limits = Limits(max_pixels=10**12)
t0, c0 = time.perf_counter(), time.process_time()
img = read_image(Path(sys.argv[1]), "image", 1, 200, limits)
print(json.dumps({"seconds": time.perf_counter() - t0, "cpu": time.process_time() - c0, "size": img.size,
                  "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def read(path: Path, how: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), how], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    return json.loads(out.stdout)


def main() -> None:
    from PIL import Image, ImageDraw, ImageFont

    from fault_kit import FONT

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="16000x12500", help="WIDTHxHEIGHT of the scan (default: 200 MP)")
    args = ap.parse_args()
    w, h = map(int, args.size.split("x"))
    with tempfile.TemporaryDirectory(prefix="pagerag-bigjpeg-") as tmp:
        path = Path(tmp) / "poster.jpg"
        img = Image.new("L", (w, h), 255)
        draw = ImageDraw.Draw(img)
        font = ImageFont.truetype(FONT, max(40, h // 60))
        for i in range(40):  # lines of text down the page, so the decoder has ink to decode
            draw.text((w // 20, h // 40 + i * h // 42), f"Line {i}: granary ledger, barley and oats " * 3, fill=0,
                      font=font)
        img.save(path, "JPEG", quality=85)
        del img, draw
        full, reduced = read(path, "full"), read(path, "reduced")
        mb = path.stat().st_size / 2**20
    rows = [("whole (baseline)", full), ("reduced", reduced)]
    print(f"{w}x{h} px ({w * h / 1e6:.0f} MP) JPEG, {mb:.1f} MiB\n")
    print("| read | size (px) | seconds | CPU s | peak RSS MiB |\n|---|---|---|---|---|")
    for name, r in rows:
        print(f"| {name} | {r['size'][0]}x{r['size'][1]} | {r['seconds']:.2f} | {r['cpu']:.2f} | {r['rss_mib']:.0f} |")
    print(f"\nratio reduced/full: {reduced['seconds'] / full['seconds']:.2f}x time, "
          f"{reduced['rss_mib'] / full['rss_mib']:.2f}x peak RSS")


if __name__ == "__main__":
    main()
