"""Generated corpora for the fault tests and `bench/faults.py`: awkward files, and seeded kill trials.

    kinds = make_bad_corpus(folder)        # [Kind(name, expect, fragment, pages), ...]
    check_bad_build(folder, kinds, index)  # -> {"handled": ..., "problems": [...]}

Every kind is either indexed (with a known number of pages) or skipped with a reason
that contains `fragment`. Nothing here mocks pagerag: the files are real bytes on disk.
"""
from __future__ import annotations

import io
import os
import stat
from dataclasses import dataclass
from pathlib import Path

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


@dataclass
class Kind:
    name: str  # file (or folder) name inside the corpus, as bytes-safe str
    # "indexed" | "error" (skipped, counts as an error) | "unsupported" or "noted" (skipped, not an error) |
    # "ignored" (neither it nor anything under it is indexed or skipped)
    expect: str
    fragment: str = ""  # part of the skip reason
    pages: int = 1  # pages when indexed


def text_pdf(path: Path, pages: list[str], title: str = "") -> Path:
    import pymupdf as fitz

    doc = fitz.open()
    for text in pages:
        page = doc.new_page()
        y = 72
        for line in text.split("\n"):
            page.insert_text((72, y), line, fontsize=11)
            y += 16
    if title:
        doc.set_metadata({"title": title})
    path.parent.mkdir(parents=True, exist_ok=True)
    doc.save(path)
    return path


def page_image(lines: list[str], size=(600, 300), mode="RGB"):
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(FONT, 28) if Path(FONT).exists() else ImageFont.load_default(size=28)
    for i, line in enumerate(lines):
        draw.text((20, 20 + i * 40), line, fill="black", font=font)
    return img.convert(mode) if mode != "RGB" else img


def _save(img, path: Path, **kw) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **kw)


def _bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


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
    _bytes(path, data[: len(data) - len(data) // 5])


def _multi_tiff_last_garbled(path: Path) -> None:
    """Three frames that all open; the last one's compressed data is garbage (fails only when read)."""
    from PIL import Image

    frames = [page_image([f"Frame {i} of the ledger"]) for i in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, format="TIFF", save_all=True, append_images=frames[1:], compression="tiff_deflate")
    data = bytearray(buf.getvalue())
    img = Image.open(io.BytesIO(bytes(data)))
    img.seek(2)
    start, length = img.tag_v2[273][0], img.tag_v2[279][0]
    data[start:start + length] = bytes(range(256)) * (length // 256) + bytes(length % 256)
    _bytes(path, bytes(data))


def _gif(path: Path, frames: int) -> None:
    imgs = [page_image([f"Slide {i + 1}: tram timetable"]).convert("P") for i in range(frames)]
    _save(imgs[0], path, save_all=True, append_images=imgs[1:], duration=200, loop=0)


def _exif_rotated(path: Path) -> None:
    from PIL import Image

    img = page_image(["Rotated receipt total 42.50"]).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display
    _save(img, path, exif=exif)


def _bomb(path: Path) -> None:
    """A tiny PNG that claims 100000 x 100000 pixels."""
    import struct
    import zlib

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 0, 0, 0, 0)
    _bytes(path, b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 100)) +
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

    add(Kind("good.pdf", "indexed", pages=3), lambda p: _bytes(p, good_pdf))
    add(Kind("good.png", "indexed"), lambda p: _bytes(p, png))
    add(Kind("empty.pdf", "error", "empty file"), lambda p: _bytes(p, b""))
    add(Kind("empty.png", "error", "empty file"), lambda p: _bytes(p, b""))
    add(Kind("fake.pdf", "error", "not a readable PDF"), lambda p: _bytes(p, b"this is not a pdf at all\n" * 20))
    add(Kind("locked.pdf", "error", "encrypted"), _encrypted)
    add(Kind("repaired.pdf", "error", "damaged"), lambda p: _bytes(p, good_pdf[: int(len(good_pdf) * 0.3)]))
    add(Kind("cut.png", "error", "truncated"), lambda p: _bytes(p, png[: len(png) * 2 // 5]))
    add(Kind("cut3.tif", "error", "image"), _multi_tiff_last_cut)
    add(Kind("garbled3.tif", "error", "page 3"), _multi_tiff_last_garbled)
    add(Kind("garbage.jpg", "error", "not a readable image"),
        lambda p: _bytes(p, b"\xff\xd8\xff" + bytes(range(256)) * 40))
    add(Kind("badcrc.png", "error", "image"), lambda p: _bytes(p, png[:40] + bytes([png[40] ^ 0xFF]) + png[41:]))
    add(Kind("bomb.png", "error", "too large"), _bomb)
    add(Kind("pdf-named.png", "error", "not a readable image"), lambda p: _bytes(p, good_pdf))
    add(Kind("notes.docx", "unsupported", "unsupported file type '.docx'"), lambda p: _bytes(p, b"PK\x03\x04 word"))
    add(Kind("README", "unsupported", "unsupported file type"), lambda p: _bytes(p, b"read me"))
    add(Kind("pipe.png", "error", "not a regular file"), lambda p: os.mkfifo(p))
    add(Kind("dangling.png", "error", "cannot read"), lambda p: os.symlink(folder / "no-such-file.png", p))
    add(Kind("link.png", "indexed"), lambda p: os.symlink(folder / "good.png", p))
    add(Kind("png-named.jpg", "indexed"), lambda p: _bytes(p, png))
    add(Kind("UPPER.PDF", "indexed", pages=3), lambda p: _bytes(p, good_pdf))
    add(Kind("sliver-1x10000.png", "indexed"), lambda p: _save(Image.new("RGB", (1, 10000), "white"), p))
    add(Kind("sliver-10000x1.png", "indexed"), lambda p: _save(Image.new("RGB", (10000, 1), "white"), p))
    add(Kind("dot-1x1.png", "indexed"), lambda p: _save(Image.new("RGB", (1, 1), "white"), p))
    add(Kind("animated.gif", "indexed", pages=3), lambda p: _gif(p, 3))
    add(Kind("cmyk.jpg", "indexed"), lambda p: _save(page_image(["CMYK invoice 77"], mode="CMYK"), p))
    add(Kind("gray16.png", "indexed"),
        lambda p: _save(page_image(["sixteen bit"]).convert("L").convert("I;16"), p))
    add(Kind("g4.tif", "indexed"), lambda p: _save(page_image(["fax page"]).convert("1"), p, compression="group4"))
    add(Kind("exif-rotated.jpg", "indexed"), _exif_rotated)
    add(Kind("transparent.png", "indexed"), lambda p: _save(page_image(["alpha"]).convert("RGBA"), p))
    add(Kind("palette.bmp", "indexed"), lambda p: _save(page_image(["bitmap"]).convert("P"), p))
    add(Kind("blank-text.pdf", "indexed"), lambda p: _bytes(p, _pdf_bytes(1, " ")))
    add(Kind("caf\udce9-latin1.png", "indexed"), lambda p: _bytes(p, png))
    add(Kind("name with spaces & ünïcödé ✓.png", "indexed"), lambda p: _bytes(p, png))
    add(Kind("new\nline.png", "indexed"), lambda p: _bytes(p, png))
    add(Kind(".hidden.png", "ignored"), lambda p: _bytes(p, b"hidden files are not even looked at"))
    add(Kind("deep", "error", "cannot read this folder"), _deep_folder)
    # what a hostile first use found (blind1): contents that are not what the name says, odd page
    # counts and sizes, links of every kind, and folders that are not documents
    add(Kind("html-download.pdf", "error", "not a PDF: its content is HTML"),
        lambda p: _bytes(p, b"<!DOCTYPE html><html><body><h1>Sign in to download</h1></body></html>"))
    add(Kind("png-named.pdf", "error", "not a PDF: its content is"), lambda p: _bytes(p, png))
    add(Kind("zero-pages.pdf", "error", "no pages"), lambda p: _bytes(p, _ZERO_PAGE_PDF))
    add(Kind("owner-password-only.pdf", "indexed"), _owner_only)
    add(Kind("broken-xref.pdf", "indexed", pages=3), lambda p: _bytes(p, _broken_xref(good_pdf)))
    add(Kind("apng.png", "indexed", pages=3), _apng)
    add(Kind("mixed-modes.tif", "indexed", pages=2), _mixed_tiff)
    add(Kind("wide-65535x1.png", "indexed"), lambda p: _save(Image.new("L", (65535, 1), 255), p))
    add(Kind("progressive-cut.jpg", "error", "truncated"), _progressive_cut)
    add(Kind("-leading-dash.png", "indexed"), lambda p: _bytes(p, png))
    add(Kind("tab\tname.png", "indexed"), lambda p: _bytes(p, png))
    add(Kind("n" * 251 + ".png", "indexed"), lambda p: _bytes(p, png))  # 255 bytes, the most a name holds
    add(Kind("folder.pdf/inside.png", "indexed"), lambda p: _bytes(p, png))
    add(Kind("self-loop.png", "error", "symbolic links"), lambda p: os.symlink(p.name, p))
    add(Kind("to-dev-zero.png", "error", "not a regular file"), lambda p: os.symlink("/dev/zero", p))
    elsewhere = folder.parent / (folder.name + "-elsewhere")
    add(Kind("linked-folder/outside.png", "indexed"), lambda p: (
        _bytes(elsewhere / "outside.png", png), os.symlink(elsewhere, p.parent)))
    add(Kind("back-to-top", "noted", "read once"), lambda p: os.symlink(".", p))
    add(Kind("nested-index", "ignored"), _index_folder)
    add(Kind("archive-scan.jp2", "indexed"), lambda p: _save(page_image(["JPEG 2000 scan of the ledger"]), p))
    return kinds


# a PDF whose page tree is empty
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
    _save(frames[0], path, save_all=True, append_images=frames[1:], duration=100)


def _mixed_tiff(path: Path) -> None:
    _save(page_image(["colour page of the ledger"]), path, save_all=True,
          append_images=[page_image(["fax page of the ledger"]).convert("1")])


def _progressive_cut(path: Path) -> None:
    buf = io.BytesIO()
    page_image(["progressive scan of the ledger"]).save(buf, format="JPEG", progressive=True)
    _bytes(path, buf.getvalue()[: len(buf.getvalue()) // 2])


def _index_folder(path: Path) -> None:
    """A pagerag index inside the corpus (its database, lock file, and a page image beside them)."""
    path.mkdir(parents=True)
    for name in ("index.db", "write.lock"):
        (path / name).write_bytes(b"")
    _bytes(path / "saved-page.png", _png_bytes(["a page saved with --save-evidence"]))


def _png_bytes(lines: list[str]) -> bytes:
    buf = io.BytesIO()
    page_image(lines).save(buf, format="PNG")
    return buf.getvalue()


def check_bad_build(folder: Path, kinds: list[Kind], index: Path) -> tuple[int, list[str]]:
    """(kinds handled as expected, problems) for a corpus built into `index`."""
    from index.sources import db_path, fs_path
    from index.store import Index

    idx = Index.open(index)
    try:
        docs = {fs_path(d["path"]): d for d in idx.documents()}
        pages = {fs_path(p): n for p, n in idx.db.execute(
            "SELECT d.path, count(*) FROM pages p JOIN documents d ON d.id = p.doc_id GROUP BY d.path")}
        skipped = {fs_path(p): (r, e) for p, r, e in idx.skipped()}
    finally:
        idx.close()
    handled, problems = 0, []
    root = str(folder.resolve())
    for k in kinds:
        path = os.path.join(root, k.name)
        if k.expect == "indexed":
            ok = path in docs and docs[path]["status"] == "done" and pages.get(path) == k.pages
            why = f"expected {k.pages} page(s) indexed, got {pages.get(path)} ({skipped.get(path)})"
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


def is_regular(path: Path) -> bool:
    return stat.S_ISREG(os.lstat(path).st_mode)


# -- kill trials ----------------------------------------------------------------------
# Builds run in forked children of a process that has imported everything and loaded the
# embedding model but never run it (so no thread pool is forked mid-flight): a trial costs
# the build itself, not a Python start-up. The parent only forks, waits, kills and compares.
QUERIES = ["harbour crane inspection", "invoice total amount due", "tram timetable changes",
           "minutes of the board meeting", "warranty claim for the boiler"]
TOPICS = ["harbour crane inspection", "invoice total amount due", "tram timetable changes",
          "minutes of the board meeting", "warranty claim for the boiler", "library parking decision",
          "water authority budget", "orchard irrigation plan", "museum ticket prices"]


def write_corpus(folder: Path, version: int) -> None:
    """Version 1: 7 text-layer PDFs (1-3 pages) and 2 small images. Version 2 (written over version 1)
    changes two PDFs and an image, removes a PDF and adds one."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, topic in enumerate(TOPICS[:7]):
        name = folder / f"doc{i}.pdf"
        if version == 2 and i == 4:
            name.unlink(missing_ok=True)
            continue
        if version == 2 and i not in (1, 6):
            continue
        edit = " (revised: figures corrected)" if version == 2 else ""
        pages = [f"{topic.capitalize()}{edit}, part {p + 1} of document {i}.\n"
                 f"Reference {i * 100 + p}: details about {topic} and item {p * 7 + i}." for p in range(1 + i % 3)]
        text_pdf(name, pages)
    scans = [["Receipt 4471", "Total 42.50 EUR"], ["Parcel label", "Dock 7 Rotterdam"]]
    for j, lines in enumerate(scans):
        if version == 2 and j == 1:
            _save(page_image(["Parcel label", "Dock 9 Antwerp"], size=(420, 160)), folder / f"scan{j}.png")
        elif version == 1:
            _save(page_image(lines, size=(420, 160)), folder / f"scan{j}.png")
    if version == 2:
        text_pdf(folder / "doc9.pdf", ["A new memo about lighthouse maintenance.\nLamp replaced in March."])


def in_child(fn, *args, timeout: float = 300):
    """Run fn(*args) in a forked child; returns its result (or raises with the child's traceback)."""
    import pickle
    import select
    import time
    import traceback

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        try:
            out = ("ok", fn(*args))
        except BaseException:  # noqa: BLE001 - everything goes back to the parent
            out = ("error", traceback.format_exc())
        with os.fdopen(w, "wb") as f:
            pickle.dump(out, f)
        os._exit(0)
    os.close(w)
    chunks, deadline = [], time.monotonic() + timeout
    with os.fdopen(r, "rb") as f:
        while True:
            ready, _, _ = select.select([f], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                raise TimeoutError(f"child did not finish in {timeout}s")
            data = f.read1(1 << 20)
            if not data:
                break
            chunks.append(data)
    os.waitpid(pid, 0)
    status, value = pickle.loads(b"".join(chunks))
    if status != "ok":
        raise RuntimeError(value)
    return value


def killed_when(ready, delay: float, fn, *args, timeout: float = 300) -> bool:
    """Fork fn(*args); once ready() (polled every 10 ms) wait `delay` s more and SIGKILL it.

    Returns True if it was still running when killed."""
    import signal
    import time

    pid = os.fork()
    if pid == 0:
        try:
            fn(*args)
        finally:
            os._exit(0)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not os.waitpid(pid, os.WNOHANG)[0]:
        try:
            if ready():
                break
        except Exception:  # noqa: BLE001 - the database may not exist yet
            pass
        time.sleep(0.01)
    else:
        return False
    time.sleep(delay)
    if os.waitpid(pid, os.WNOHANG)[0]:
        return False
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return True


def snapshot(index: Path, embedder) -> dict:
    """What a user sees: pages, passages, and the top 10 for fixed queries, dense and lexical."""
    from index.sources import fs_path
    from index.store import Index
    from rag.retrieve import Retriever

    idx = Index.open(index)
    try:
        name = lambda p: os.path.basename(fs_path(p))  # noqa: E731
        pages = {(name(p), n): (t, s) for p, n, t, s in idx.db.execute(
            "SELECT d.path, p.page_no, p.text, p.source FROM pages p JOIN documents d ON d.id = p.doc_id")}
        chunks = {(name(p), n, o): t for p, n, o, t in idx.db.execute(
            "SELECT d.path, p.page_no, c.ord, c.text FROM chunks c JOIN pages p ON p.id = c.page_id "
            "JOIN documents d ON d.id = p.doc_id")}
        docs = {name(d["path"]): (d["sha256"], d["status"]) for d in idx.documents()}
        r = Retriever(idx, embedder)
        tops = {(mode, q): [(os.path.basename(h.path), h.page, h.score) for h in r.search(q, k=10, mode=mode)]
                for q in QUERIES for mode in ("dense", "lexical")}
        return {"pages": pages, "chunks": chunks, "docs": docs, "tops": tops}
    finally:
        idx.close()


def same_ranking(a: list, b: list, tol: float = 1e-4) -> bool:
    """Same pages in the top k, with scores equal rank by rank (so any reordering is between near-ties)."""
    return (len(a) == len(b) and sorted(x[:2] for x in a) == sorted(x[:2] for x in b)
            and all(abs(x[2] - y[2]) <= tol for x, y in zip(a, b)))


def differences(got: dict, want: dict) -> list[str]:
    out = [k for k in ("pages", "chunks", "docs") if got[k] != want[k]]
    out += [f"top-10 {m} {q!r}" for (m, q), hits in want["tops"].items() if not same_ranking(got["tops"][(m, q)], hits)]
    return out


def committed_pages(index: Path) -> dict:
    """(file name, page) -> sha256 of the document version the page belongs to."""
    import sqlite3

    db = sqlite3.connect(f"file:{index / 'index.db'}?mode=ro", uri=True)
    try:
        return {(os.path.basename(p), n): sha for p, n, sha in db.execute(
            "SELECT d.path, p.page_no, d.sha256 FROM pages p JOIN documents d ON d.id = p.doc_id")}
    finally:
        db.close()


@dataclass
class TrialResult:
    scenario: str
    after_pages: int  # killed once this many pages were committed ...
    delay: float  # ... and this many seconds more
    killed: bool
    verify_ok: bool
    verify_problems: list
    pages_lost: int
    pages_redone: int
    differences: list

    @property
    def corrupted(self) -> bool:
        return not self.verify_ok or bool(self.differences)


class KillTrials:
    """Seeded SIGKILL trials over a first build and a rebuild of changed/removed files.

        trials = KillTrials(workdir, ocr="tesseract")
        results = [trials.run(seed) for seed in range(20)]
    """

    def __init__(self, workdir: Path, ocr: str = "tesseract"):
        import shutil
        import time

        import faiss  # noqa: F401 - imported once here, not in every child

        from index.builder import BuildOptions
        from index.embed import DEFAULT_MODEL, load_embedder

        self.work = workdir
        self.embedder = None  # each child loads its own: a model's thread pools do not survive a fork
        in_child(lambda: load_embedder(DEFAULT_MODEL) and None)  # any one-time export happens here, once
        self.options = {"first": BuildOptions(ocr=ocr, jobs=1), "rebuild": BuildOptions(ocr=ocr, jobs=1, prune=True)}
        self.corpus = {"first": workdir / "c-first", "rebuild": workdir / "c-rebuild"}
        self.start = {"first": workdir / "start-first", "rebuild": workdir / "start-rebuild"}
        write_corpus(self.corpus["first"], 1)
        write_corpus(self.corpus["first"], 2)
        write_corpus(self.corpus["rebuild"], 1)
        in_child(self._build, self.start["rebuild"], "rebuild")  # the index of version 1 ...
        write_corpus(self.corpus["rebuild"], 2)  # ... and the files change under it
        self.start["first"].mkdir()
        self.reference, self.duration, self.reads = {}, {}, {}
        for scenario in ("first", "rebuild"):
            ref = workdir / f"ref-{scenario}"
            shutil.copytree(self.start[scenario], ref)
            t0 = time.monotonic()
            self.reads[scenario] = in_child(self._build, ref, scenario).pages_read
            self.duration[scenario] = time.monotonic() - t0
            self.reference[scenario] = in_child(snapshot, ref, self.embedder)

    def _build(self, index: Path, scenario: str):
        from index.builder import build

        return build(index, [self.corpus[scenario]], self.options[scenario])

    def _after_kill(self, index: Path):
        from index.maintenance import verify

        report = verify(index)
        return report.ok, [c.detail for c in report.checks if not c.ok], committed_pages(index)

    def _resume(self, index: Path):
        from index.maintenance import verify

        report = self._build(index, self.scenario)
        check = verify(index)
        return report.pages_read, check.ok, [c.detail for c in check.checks if not c.ok], snapshot(index, self.embedder)

    def run(self, seed: int, scenario: str | None = None) -> TrialResult:
        import random
        import shutil

        rng = random.Random(seed)
        self.scenario = scenario or ("first", "rebuild")[seed % 2]
        index = self.work / f"trial-{seed}"
        shutil.rmtree(index, ignore_errors=True)
        shutil.copytree(self.start[self.scenario], index)
        before = committed_pages(index) if (index / "index.db").exists() else {}
        # a random point of the build's progress (k pages committed, k = 0: while planning), plus a
        # random fraction of one page's time: kills land in planning, reading, committing and saving
        k = rng.randint(0, self.reads[self.scenario] - 1)
        delay = rng.uniform(0, self.duration[self.scenario] / max(1, self.reads[self.scenario]))
        fresh = lambda: sum(before.get(key) != sha for key, sha in committed_pages(index).items())  # noqa: E731
        killed = killed_when(lambda: fresh() >= k, delay, self._build, index, self.scenario)
        ok, problems, after = in_child(self._after_kill, index)
        final_sha = {name: sha for name, (sha, _) in self.reference[self.scenario]["docs"].items()}
        kept = {k for k, sha in after.items() if final_sha.get(k[0]) == sha and before.get(k) != sha}
        pages_read, ok2, problems2, snap = in_child(self._resume, index)
        want = self.reference[self.scenario]
        lost = sum(1 for k in want["pages"] if k not in snap["pages"])
        redone = pages_read - (self.reads[self.scenario] - len(kept))
        shutil.rmtree(index, ignore_errors=True)
        return TrialResult(self.scenario, k, round(delay, 3), killed, ok and ok2, problems + problems2, lost, redone,
                           differences(snap, want))


def main() -> None:
    """`python tests/fault_kit.py WORKDIR N [SEED0]`: N kill trials in a fresh process, one JSON line each."""
    import json
    import sys
    from dataclasses import asdict

    work, n = Path(sys.argv[1]), int(sys.argv[2])
    first = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    work.mkdir(parents=True, exist_ok=True)
    trials = KillTrials(work)
    for seed in range(first, first + n):
        print(json.dumps({"seed": seed, **asdict(trials.run(seed))}), flush=True)


if __name__ == "__main__":
    main()


def sigint_as_usual() -> None:
    """preexec_fn for a build the test will interrupt: a shell that starts a job in the background
    (CI runners, `cmd &`) leaves SIGINT ignored in it and its children, and Python keeps it so."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
