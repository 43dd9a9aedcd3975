"""The awkward corpus for `bench/faults.py` and test_faults.py: files people really have, each of a kind.

    kinds = make_bad_corpus(folder)        # [Kind(name, expect, fragment, pages), ...]
    check_bad_build(folder, kinds, index)  # -> (kinds handled as expected, problems)

Every kind is either indexed (with a known number of pages, some of them failed) or skipped with a reason
that contains `fragment`. Nothing here mocks pagerag: the files are real bytes on disk. The kill trials
that build from such files are in kill_trials.py.
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

from fault_kit import jpeg_bomb, multi_tiff_garbled, page_image, put_bytes, save_image

@dataclass
class Kind:
    name: str  # file (or folder) name inside the corpus, as bytes-safe str
    # "indexed" | "error" (skipped, counts as an error) | "unsupported" or "noted" (skipped, not an error) |
    # "ignored" (neither it nor anything under it is indexed or skipped)
    expect: str
    fragment: str = ""  # part of the skip reason
    pages: int = 1  # pages when indexed
    failed: int = 0  # pages that could not be read when indexed (a partly indexed file)


def _pdf_bytes(pages: int, text: str = "Quarterly harbour crane inspection report") -> bytes:
    import pymupdf as fitz

    doc = fitz.open()
    for i in range(pages):
        doc.new_page().insert_text((72, 72), f"{text} page {i + 1}", fontsize=11)
    return doc.tobytes()


def _encrypted(path: Path) -> None:
    import pymupdf as fitz

    doc = fitz.open()
    doc.new_page().insert_text((72, 72), "secret quarterly numbers " * 5)
    doc.save(path, encryption=fitz.PDF_ENCRYPT_AES_256, user_pw="u", owner_pw="o")


def _multi_tiff_last_cut(path: Path) -> None:
    frames = [page_image([f"Frame {i} of the ledger"]) for i in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, format="TIFF", save_all=True, append_images=frames[1:], compression="tiff_deflate")
    data = buf.getvalue()
    put_bytes(path, data[: len(data) - len(data) // 5])


def _multi_tiff_last_garbled(path: Path) -> None:
    multi_tiff_garbled(path, [f"Frame {i} of the ledger" for i in range(3)], 3)


def _gif(path: Path, frames: int) -> None:
    imgs = [page_image([f"Slide {i + 1}: tram timetable"]).convert("P") for i in range(frames)]
    save_image(imgs[0], path, save_all=True, append_images=imgs[1:], duration=200, loop=0)


def _exif_rotated(path: Path) -> None:
    from PIL import Image

    img = page_image(["Rotated receipt total 42.50"]).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display
    save_image(img, path, exif=exif)


def _bomb(path: Path) -> None:
    """A tiny PNG that claims 100000 x 100000 pixels."""
    import struct
    import zlib

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 0, 0, 0, 0)
    put_bytes(path, b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 100)) +
           chunk(b"IEND", b""))


def _deep_folder(root: Path) -> None:
    """A folder whose path is longer than PATH_MAX: listing it fails even for root (ENAMETOOLONG)."""
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root, os.O_RDONLY)
    try:
        for _ in range(20):
            name = "d" * 250
            os.mkdir(name, dir_fd=fd)
            nxt = os.open(name, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = nxt
        img = page_image(["unreachable"])
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        out = os.open("lost.png", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(out, buf.getvalue())
        os.close(out)
    finally:
        os.close(fd)


def make_bad_corpus(folder: Path) -> list[Kind]:
    """Write the awkward corpus into `folder`; returns what each entry should become."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    good_pdf = _pdf_bytes(3)
    png = io.BytesIO()
    page_image(["Harbour crane maintenance schedule"]).save(png, format="PNG")
    png = png.getvalue()
    kinds: list[Kind] = []

    def add(kind: Kind, make) -> None:
        make(folder / kind.name)
        kinds.append(kind)

    add(Kind("good.pdf", "indexed", pages=3), lambda p: put_bytes(p, good_pdf))
    add(Kind("good.png", "indexed"), lambda p: put_bytes(p, png))
    add(Kind("empty.pdf", "error", "empty file"), lambda p: put_bytes(p, b""))
    add(Kind("empty.png", "error", "empty file"), lambda p: put_bytes(p, b""))
    add(Kind("fake.pdf", "error", "not a readable PDF"), lambda p: put_bytes(p, b"this is not a pdf at all\n" * 20))
    add(Kind("locked.pdf", "error", "encrypted"), _encrypted)
    add(Kind("repaired.pdf", "error", "damaged"), lambda p: put_bytes(p, good_pdf[: int(len(good_pdf) * 0.3)]))
    add(Kind("cut.png", "error", "truncated"), lambda p: put_bytes(p, png[: len(png) * 2 // 5]))
    add(Kind("cut3.tif", "error", "image"), _multi_tiff_last_cut)
    add(Kind("garbled3.tif", "indexed", pages=2, failed=1), _multi_tiff_last_garbled)
    add(Kind("garbage.jpg", "error", "not a readable image"),
        lambda p: put_bytes(p, b"\xff\xd8\xff" + bytes(range(256)) * 40))
    add(Kind("badcrc.png", "error", "image"), lambda p: put_bytes(p, png[:40] + bytes([png[40] ^ 0xFF]) + png[41:]))
    add(Kind("bomb.png", "error", "too large"), _bomb)
    add(Kind("bomb.jpg", "error", "decompression bomb"), jpeg_bomb)  # JPEGs over the limit are read reduced, not it
    add(Kind("pdf-named.png", "error", "not a readable image"), lambda p: put_bytes(p, good_pdf))
    add(Kind("notes.docx", "unsupported", "unsupported file type '.docx'"), lambda p: put_bytes(p, b"PK\x03\x04 word"))
    add(Kind("README", "unsupported", "unsupported file type"), lambda p: put_bytes(p, b"read me"))
    add(Kind("pipe.png", "error", "not a regular file"), lambda p: os.mkfifo(p))
    add(Kind("dangling.png", "error", "cannot read"), lambda p: os.symlink(folder / "no-such-file.png", p))
    add(Kind("link.png", "indexed"), lambda p: os.symlink(folder / "good.png", p))
    add(Kind("png-named.jpg", "indexed"), lambda p: put_bytes(p, png))
    add(Kind("UPPER.PDF", "indexed", pages=3), lambda p: put_bytes(p, good_pdf))
    add(Kind("sliver-1x10000.png", "indexed"), lambda p: save_image(Image.new("RGB", (1, 10000), "white"), p))
    add(Kind("sliver-10000x1.png", "indexed"), lambda p: save_image(Image.new("RGB", (10000, 1), "white"), p))
    add(Kind("dot-1x1.png", "indexed"), lambda p: save_image(Image.new("RGB", (1, 1), "white"), p))
    add(Kind("animated.gif", "indexed", pages=3), lambda p: _gif(p, 3))
    add(Kind("cmyk.jpg", "indexed"), lambda p: save_image(page_image(["CMYK invoice 77"], mode="CMYK"), p))
    add(Kind("gray16.png", "indexed"),
        lambda p: save_image(page_image(["sixteen bit"]).convert("L").convert("I;16"), p))
    add(Kind("g4.tif", "indexed"), lambda p: save_image(page_image(["fax page"]).convert("1"), p, compression="group4"))
    add(Kind("exif-rotated.jpg", "indexed"), _exif_rotated)
    add(Kind("transparent.png", "indexed"), lambda p: save_image(page_image(["alpha"]).convert("RGBA"), p))
    add(Kind("palette.bmp", "indexed"), lambda p: save_image(page_image(["bitmap"]).convert("P"), p))
    add(Kind("blank-text.pdf", "indexed"), lambda p: put_bytes(p, _pdf_bytes(1, " ")))
    add(Kind("caf\udce9-latin1.png", "indexed"), lambda p: put_bytes(p, png))
    add(Kind("name with spaces & ünïcödé ✓.png", "indexed"), lambda p: put_bytes(p, png))
    add(Kind("new\nline.png", "indexed"), lambda p: put_bytes(p, png))
    add(Kind(".hidden.png", "ignored"), lambda p: put_bytes(p, b"hidden files are not even looked at"))
    add(Kind("deep", "error", "cannot read this folder"), _deep_folder)
    # what a hostile first use found (blind1): contents that are not what the name says, odd page
    # counts and sizes, links of every kind, and folders that are not documents
    add(Kind("html-download.pdf", "error", "not a PDF: its content is HTML"),
        lambda p: put_bytes(p, b"<!DOCTYPE html><html><body><h1>Sign in to download</h1></body></html>"))
    add(Kind("png-named.pdf", "error", "not a PDF: its content is"), lambda p: put_bytes(p, png))
    add(Kind("zero-pages.pdf", "error", "no pages"), lambda p: put_bytes(p, _ZERO_PAGE_PDF))
    add(Kind("owner-password-only.pdf", "indexed"), _owner_only)
    add(Kind("broken-xref.pdf", "indexed", pages=3), lambda p: put_bytes(p, _broken_xref(good_pdf)))
    add(Kind("apng.png", "indexed", pages=3), _apng)
    add(Kind("mixed-modes.tif", "indexed", pages=2), _mixed_tiff)
    add(Kind("wide-65535x1.png", "indexed"), lambda p: save_image(Image.new("L", (65535, 1), 255), p))
    add(Kind("progressive-cut.jpg", "error", "truncated"), _progressive_cut)
    add(Kind("-leading-dash.png", "indexed"), lambda p: put_bytes(p, png))
    add(Kind("tab\tname.png", "indexed"), lambda p: put_bytes(p, png))
    add(Kind("n" * 251 + ".png", "indexed"), lambda p: put_bytes(p, png))  # 255 bytes, the most a name holds
    add(Kind("folder.pdf/inside.png", "indexed"), lambda p: put_bytes(p, png))
    add(Kind("self-loop.png", "error", "symbolic links"), lambda p: os.symlink(p.name, p))
    add(Kind("to-dev-zero.png", "error", "not a regular file"), lambda p: os.symlink("/dev/zero", p))
    elsewhere = folder.parent / (folder.name + "-elsewhere")
    add(Kind("linked-folder/outside.png", "indexed"), lambda p: (
        put_bytes(elsewhere / "outside.png", png), os.symlink(elsewhere, p.parent)))
    add(Kind("back-to-top", "noted", "read once"), lambda p: os.symlink(".", p))
    add(Kind("nested-index", "ignored"), _index_folder)
    add(Kind("archive-scan.jp2", "indexed"), lambda p: save_image(page_image(["JPEG 2000 scan of the ledger"]), p))
    # a third hostile first use (blinda): deep samples, other names for JPEG and PNM, a later page too large,
    # a file too large to hash, a rotated text layer
    add(Kind("scan16.png", "indexed"), _scan16)
    add(Kind("download.jfif", "indexed"), lambda p: save_image(page_image(["JPEG saved by a browser"]), p,
                                                                   format="JPEG"))
    add(Kind("scanimage.pgm", "indexed"), lambda p: save_image(page_image(["scanner output"], mode="L"), p))
    add(Kind("later-page-huge.tif", "indexed", pages=1, failed=1), _later_page_huge)
    add(Kind("sparse-4GiB.pdf", "error", "over the 2048 MiB limit"), _sparse)
    add(Kind("rotated-text.pdf", "indexed", pages=2), _rotated_text)
    return kinds


def _sparse(path: Path) -> None:
    """4 GiB of apparent size and no disk used: refused from its size, never read (hashing it took minutes)."""
    put_bytes(path, b"")
    os.truncate(path, 4 << 30)


def _scan16(path: Path) -> None:
    """A 16-bit grayscale scan whose ink and paper lie inside 0..65535 (clipped at 255, it read as blank)."""
    import numpy as np
    from PIL import Image

    ink = np.asarray(page_image(["Sixteen bit scan of the granary ledger"], mode="L"), dtype=np.float64) / 255
    save_image(Image.fromarray((3000 + ink * 55000).astype(np.uint16)), path)


def _later_page_huge(path: Path) -> None:
    """Two TIFF pages: the first small, the second claiming 60000×60000 px (a few bytes of data)."""
    import struct

    from PIL import Image

    buf = io.BytesIO()
    page_image(["first page fits"]).save(buf, format="TIFF", save_all=True, append_images=[Image.new("L", (64, 64))],
                                         compression="tiff_deflate")
    data = bytearray(buf.getvalue())
    first = struct.unpack_from("<I", data, 4)[0]
    second = struct.unpack_from("<I", data, first + 2 + 12 * struct.unpack_from("<H", data, first)[0])[0]
    for i in range(struct.unpack_from("<H", data, second)[0]):
        entry = second + 2 + 12 * i
        tag, kind = struct.unpack_from("<HH", data, entry)
        if tag in (256, 257, 278):  # width, height, rows per strip
            struct.pack_into("<H" if kind == 3 else "<I", data, entry + 8, 60000)
    put_bytes(path, bytes(data))


def _rotated_text(path: Path) -> None:
    import pymupdf as fitz

    doc = fitz.open()
    for turn in (90, 270):
        page = doc.new_page()
        page.insert_text((72, 72), f"Turned {turn} degrees: lighthouse keeper rota", fontsize=11)
        page.set_rotation(turn)
    doc.save(path)


_ZERO_PAGE_PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>"
                  b"endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")


def _owner_only(path: Path) -> None:
    """Encrypted with an owner password only: anyone may open it, so it is read."""
    import pymupdf as fitz

    doc = fitz.open()
    doc.new_page().insert_text((72, 72), "owner password only: quarterly harbour audit " * 3)
    doc.save(path, encryption=fitz.PDF_ENCRYPT_AES_256, owner_pw="o", user_pw="", permissions=0)


def _broken_xref(pdf: bytes) -> bytes:
    """The cross-reference offset points nowhere: MuPDF rebuilds it and every page keeps its text."""
    return pdf[:pdf.rfind(b"startxref")] + b"startxref\n999999\n%%EOF\n"


def _apng(path: Path) -> None:
    frames = [page_image([f"Animated PNG frame {i + 1}: ferry"]) for i in range(3)]
    save_image(frames[0], path, save_all=True, append_images=frames[1:], duration=100)


def _mixed_tiff(path: Path) -> None:
    save_image(page_image(["colour page of the ledger"]), path, save_all=True,
          append_images=[page_image(["fax page of the ledger"]).convert("1")])


def _progressive_cut(path: Path) -> None:
    buf = io.BytesIO()
    page_image(["progressive scan of the ledger"]).save(buf, format="JPEG", progressive=True)
    put_bytes(path, buf.getvalue()[: len(buf.getvalue()) // 2])


def _index_folder(path: Path) -> None:
    """A pagerag index inside the corpus (its database, lock file, and a page image beside them)."""
    path.mkdir(parents=True)
    for name in ("index.db", "write.lock"):
        (path / name).write_bytes(b"")
    put_bytes(path / "saved-page.png", _png_bytes(["a page saved with --save-evidence"]))


def _png_bytes(lines: list[str]) -> bytes:
    buf = io.BytesIO()
    page_image(lines).save(buf, format="PNG")
    return buf.getvalue()


def check_bad_build(folder: Path, kinds: list[Kind], index: Path) -> tuple[int, list[str]]:
    """(kinds handled as expected, problems) for a corpus built into `index`."""
    from index.stored_paths import db_path, fs_path
    from index.store import Index

    idx = Index.open(index)
    try:
        docs = {fs_path(d["path"]): d for d in idx.documents()}
        pages = {fs_path(p): n for p, n in idx.db.execute(
            "SELECT d.path, count(*) FROM pages p JOIN documents d ON d.id = p.doc_id GROUP BY d.path")}
        skipped = {fs_path(p): (r, e) for p, r, e in idx.skipped()}
        failed = {fs_path(p): len(f) for p, _, f in idx.partial_documents()}
    finally:
        idx.close()
    handled, problems = 0, []
    root = str(folder.resolve())
    for k in kinds:
        path = os.path.join(root, k.name)
        if k.expect == "indexed":
            ok = (path in docs and docs[path]["status"] == "done" and pages.get(path) == k.pages
                  and failed.get(path, 0) == k.failed)
            why = (f"expected {k.pages} page(s) indexed and {k.failed} failed, got {pages.get(path)} and "
                   f"{failed.get(path, 0)} ({skipped.get(path)})")
        elif k.expect == "ignored":
            ok = not any(p == path or p.startswith(path + "/") for p in [*docs, *skipped])
            why = "should be ignored, with everything under it"
        else:
            hits = [(r, e) for p, (r, e) in skipped.items() if p == path or p.startswith(path + "/")]
            ok = (path not in docs and len(hits) >= 1 and all(k.fragment in r for r, _ in hits)
                  and all(e == (k.expect == "error") for _, e in hits))
            why = f"expected a skip with '{k.fragment}', got {hits or docs.get(path) and 'indexed'}"
        if ok:
            handled += 1
        else:
            problems.append(f"{db_path(k.name)!r}: {why}")
    return handled, problems
