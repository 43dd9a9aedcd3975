"""Finding document files and reading their pages (image and PDF text layer).

A *document* is one file; its *pages* are PDF pages, or the frames of an image
(TIFF pages, animated GIF/WebP/PNG frames; one for a still image). Page numbers are 1-based.

How a file's name is kept in the index (`db_path`, `fs_path`, `shown`) is in stored_paths.py.
"""
from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from .errors import BadInput, UnsupportedFile
from .image_limits import open_image, reduction, too_large
from .stored_paths import valid_text
from .words import Word

KINDS = {
    ".pdf": "pdf",
    ".tif": "tiff", ".tiff": "tiff",
    ".png": "image", ".jpg": "image", ".jpeg": "image", ".webp": "image",
    ".bmp": "image", ".gif": "image",
    ".jp2": "image", ".j2k": "image", ".jpx": "image",  # JPEG 2000: what many scanning archives keep
    ".jfif": "image", ".jpe": "image",  # JPEG as browsers save it
    ".pnm": "image", ".pbm": "image", ".pgm": "image", ".ppm": "image",  # what `scanimage` (SANE) writes
}
# a PDF text layer with fewer letters/digits than this is treated as absent
MIN_TEXT_LAYER_CHARS = 20


@dataclass(frozen=True)
class Limits:
    """What counts as 'enormous' input; such files are skipped with a reason."""

    max_file_bytes: int = 2 << 30
    max_pixels: int = 180_000_000
    max_pages: int = 20_000


@dataclass
class DocumentInfo:
    path: Path
    kind: str
    n_pages: int
    title: str


def walk(paths: list[Path], on_error: Callable[[str, OSError], None] | None = None,
         on_skip: Callable[[str, str], None] | None = None,
         exclude: Path | None = None) -> Iterator[tuple[Path, Path]]:
    """Yield (file, root) for every non-hidden file under `paths`, sorted, roots first-seen.

    A folder that cannot be listed goes to `on_error(path, error)` and is passed over. Links to
    folders are followed, each folder read once: a link back to a folder already being read (a
    loop, or a second way to the same files) goes to `on_skip(path, reason)`. Index folders (the
    one being built, `exclude`, and any other holding a pagerag index) are left out.
    """
    seen: set[Path] = set()
    visited: set[tuple[int, int]] = set()
    report = (lambda e: on_error(e.filename, e)) if on_error else None
    exclude = exclude.resolve() if exclude is not None else None

    def enter(folder: str) -> str | None:
        """None to read the folder, else why not."""
        if exclude is not None and Path(folder) == exclude or is_index_folder(folder):
            return ""
        try:
            st = os.stat(folder)
        except OSError:
            return None  # os.walk reports it when it fails to list it
        if (st.st_dev, st.st_ino) in visited:
            return f"a link to a folder already indexed ({os.path.realpath(folder)}); read once"
        visited.add((st.st_dev, st.st_ino))
        return None

    for root in paths:
        root = root.resolve()
        if root.exists() and not root.is_dir():  # a file, or a device or pipe named directly: planned as a file
            files = [root]
            base = root.parent
        else:
            base = root
            files = []
            if enter(str(root)) is None:
                for dirpath, dirnames, filenames in os.walk(root, onerror=report, followlinks=True):
                    kept = []
                    for d in sorted(d for d in dirnames if not d.startswith(".")):
                        why = enter(os.path.join(dirpath, d))
                        if why is None:
                            kept.append(d)
                        elif why and on_skip:
                            on_skip(os.path.join(dirpath, d), why)
                    dirnames[:] = kept
                    files.extend(Path(dirpath) / f for f in sorted(filenames) if not f.startswith("."))
        for f in files:
            if f not in seen:
                seen.add(f)
                yield f, base


def presence(path: str) -> bool | None:
    """True: a regular file is there; False: it is gone (deleted, or now a folder or device); None: cannot tell
    (a folder on the way cannot be searched): an unreadable file is not a gone one."""
    import errno
    import stat

    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError as e:
        return False if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP) else None


def is_index_folder(folder: str | Path) -> bool:
    """A pagerag index folder (its database and its writers' lock file): never part of a corpus."""
    return os.path.isfile(os.path.join(folder, "index.db")) and os.path.isfile(os.path.join(folder, "write.lock"))


def open_pdf(path: Path):
    """pymupdf.open(path), also for a name with bytes that are not UTF-8 (MuPDF takes a UTF-8 str):
    such a file is handed over as its bytes."""
    import pymupdf

    pymupdf.TOOLS.mupdf_display_errors(False)  # damage is reported as a skip with its reason, not on stderr
    pymupdf.TOOLS.mupdf_display_warnings(False)
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return pymupdf.open(stream=Path(path).read_bytes(), filetype="pdf")
    return pymupdf.open(path)


def kind_of(path: Path) -> str:
    kind = KINDS.get(path.suffix.lower())
    if kind is None:
        raise UnsupportedFile(f"unsupported file type '{path.suffix or path.name}'")
    return kind


def humanize(path: Path, root: Path) -> str:
    """'reports/annual_report-2018.pdf' -> 'reports / annual report 2018'."""
    try:
        rel = path.relative_to(root)
    except ValueError:
        rel = Path(path.name)
    parts = [*rel.parent.parts, rel.stem]
    if len(parts) == 1 and path.parent.name:
        parts = [path.parent.name, rel.stem]
    return valid_text(" / ".join(re.sub(r"[_\-]+", " ", p).strip() for p in parts))


def check_size(size: int, limits: Limits = Limits()) -> None:
    """Raise BadInput for a file too small or too large to read; said from its size alone, before any
    byte is read (a 20 GB file is not hashed to be refused)."""
    if size == 0:
        raise BadInput("empty file (0 bytes)")
    if size > limits.max_file_bytes:
        raise BadInput(f"file is {size / 2**20:.0f} MiB, over the {limits.max_file_bytes / 2**20:.0f} MiB limit")


def probe(path: Path, root: Path, limits: Limits = Limits()) -> DocumentInfo:
    """Open a file just enough to know its kind, page count and title; raise BadInput if unusable."""
    kind = kind_of(path)
    check_size(path.stat().st_size, limits)
    name = humanize(path, root)
    if kind == "pdf":
        try:
            doc = open_pdf(path)
        except Exception as e:  # fitz raises its own FileDataError, RuntimeError...
            raise BadInput(f"not a readable PDF ({e})") from None
        with doc:
            if not doc.is_pdf:  # MuPDF also opens HTML, XPS, EPUB, images...: a download that went wrong
                what = (doc.metadata or {}).get("format") or "another format"
                raise BadInput(f"not a PDF: its content is {what}; get the PDF itself, or name the file by "
                               "its type")
            if doc.needs_pass:
                raise BadInput("PDF is encrypted (password-protected); decrypt it first, e.g. `qpdf --decrypt`")
            try:
                n = doc.page_count
                meta_title = (doc.metadata or {}).get("title") or ""
                if doc.is_repaired:
                    _check_repaired(doc)
            except BadInput:
                raise
            except Exception as e:  # e.g. a truncated file: "code=7: Invalid number of pages"
                raise BadInput(f"PDF is damaged (truncated or corrupt): {str(e).splitlines()[0][:200]}; "
                               "get an intact copy of the file") from None
        title = f"{meta_title.strip()} ({name})" if meta_title.strip() else name
    else:
        from PIL import Image

        quiet_pillow()
        try:
            with warnings.catch_warnings():  # a corrupt EXIF block is read past, with a warning on stderr
                warnings.simplefilter("ignore", UserWarning)
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the limit is ours (`reduction`)
                with open_image(path) as img:
                    n = getattr(img, "n_frames", 1)  # TIFF pages; animated GIF/WebP/PNG frames
                    reduction(img, path.stat().st_size, limits)  # refused if too large, unless a JPEG fits reduced
        except Image.DecompressionBombError:
            raise BadInput(f"image is too large to open safely (over {limits.max_pixels:,} pixels)") from None
        except BadInput:
            raise
        except Exception as e:
            raise BadInput(f"not a readable image ({type(e).__name__}: {e})") from None
        title = name
    if n == 0:
        raise BadInput("document has no pages")
    if n > limits.max_pages:
        raise BadInput(f"document has {n} pages, over the {limits.max_pages} page limit")
    return DocumentInfo(path=path, kind=kind, n_pages=n, title=title)


def _check_repaired(doc) -> None:
    """MuPDF repairs a damaged PDF silently; refuse one whose repair left pages without content."""
    empty = [i + 1 for i in range(doc.page_count)
             if not any(doc.xref_stream(x) for x in doc[i].get_contents())]
    if empty:
        pages = f"page {empty[0]}" if len(empty) == 1 else f"{len(empty)} of {doc.page_count} pages"
        raise BadInput(f"PDF is damaged (truncated or corrupt): MuPDF repaired it, but {pages} came out empty; "
                       "get an intact copy of the file")


def quiet_pillow() -> None:
    """Keep Pillow's warnings about a file's metadata off stderr ("Possibly corrupt EXIF data", "Tag data
    larger than file", "Metadata Warning", a malformed MPO or APNG: a phone photo's maker notes often draw
    one each time it is opened). The pixels are read all the same, or the file fails with a reason of ours,
    so they tell a user nothing; they are UserWarnings raised inside PIL, silenced from there alone."""
    warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL(\.|$)")


def read_image(path: Path, kind: str, page_no: int, dpi: int, limits: Limits = Limits()):
    """The page as an upright RGB PIL image (EXIF orientation applied; PDFs rendered at `dpi`). A JPEG over the
    pixel limit comes reduced to fit (`reduction`), by the factor in its info["reduced"]; word boxes are page
    fractions, so they hold for the page as read and as shown (both come from here)."""
    from PIL import Image, ImageOps

    if kind == "pdf":
        import pymupdf as fitz

        with open_pdf(path) as doc:
            page = doc[page_no - 1]
            scale = dpi / 72
            pixels = page.rect.width * scale * page.rect.height * scale
            if pixels > limits.max_pixels:
                scale *= (limits.max_pixels / pixels) ** 0.5
            pix = page.get_pixmap(matrix=fitz.Matrix(scale, scale), alpha=False)
            return Image.frombytes("RGB", (pix.width, pix.height), pix.samples)
    quiet_pillow()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the limit is ours, checked below
            warnings.simplefilter("ignore", UserWarning)  # a corrupt EXIF block, read past
            img = open_image(path)
        with img:
            if page_no > 1:
                img.seek(page_no - 1)
            try:
                factor = reduction(img, path.stat().st_size, limits)
            except BadInput as e:
                # a later TIFF page larger than the first (which the build measured), or the file replaced since
                raise BadInput(f"page {page_no}: {e}" if page_no > 1 else f"{e}; {REPLACED}") from None
            if factor > 1:
                w, h = img.size
                img.draft(None, (max(1, w // factor), max(1, h // factor)))  # decoded at 1/factor
            img.load()
            if page_no == 1:
                with warnings.catch_warnings():  # Pillow reads past a corrupt EXIF block, warning on stderr
                    warnings.simplefilter("ignore", UserWarning)
                    img = ImageOps.exif_transpose(img)
            page = _to_rgb(img)
            page.info["reduced"] = factor
            return page
    except Image.DecompressionBombError:
        too = f"image is too large to open safely (over {limits.max_pixels:,} pixels)"
        raise BadInput(f"page {page_no}: {too}" if page_no > 1 else f"{too}; {REPLACED}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise BadInput(f"page {page_no}: image data is corrupt or truncated ({e})") from None


REPLACED = "if the file was replaced since it was indexed, re-run `pagerag index build` on its folder"


def _to_rgb(img):
    from PIL import Image

    img = _to_8bit(img)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, "white")
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB")


def _to_8bit(img):
    """A 16-bit, 32-bit or floating-point one-channel image as 8-bit 'L', its samples scaled, not clipped.

    Pillow's own conversion clips at 255, so a 16-bit scan (ink at 3000 of 65535, paper at 58000)
    came out all white and a float one (0..1) all black. 16-bit samples are scaled from their full
    range (what viewers do), float ones from 0..1 when they lie there, 32-bit integers from 16 bits
    when they exceed 8 (older Pillow opened 16-bit PNGs as 'I')."""
    if not (img.mode.startswith("I;16") or img.mode in ("I", "F")):
        return img
    import numpy as np
    from PIL import Image

    a = np.asarray(img, dtype=np.float64)
    if img.mode.startswith("I;16"):
        a = a / 257
    elif a.size and np.isfinite(a).all() and a.min() >= 0 and a.max() <= (1 if img.mode == "F" else 255):
        a = a * 255 if img.mode == "F" else a
    else:
        a = np.nan_to_num(a) / 257
    return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), "L")


def page_label(path: Path, page_no: int) -> str:
    """The PDF's label for a page ('iv', 'A-3', '14'), '' when the PDF defines none (most do not)."""
    with open_pdf(path) as doc:
        try:
            if not doc.get_page_labels():  # the /PageLabels rules: no page to load when there are none
                return ""
            return doc[page_no - 1].get_label() or ""
        except Exception:  # a malformed /PageLabels tree costs the label, not the page (MuPDF raises anything)
            return ""


def read_text_layer(path: Path, page_no: int, min_chars: int = MIN_TEXT_LAYER_CHARS
                    ) -> tuple[list[Word], tuple[float, float]] | None:
    """Words of a PDF page's text layer with normalised boxes, or None when it has fewer than `min_chars`
    letters and digits (not a usable text layer: the page is read by OCR)."""
    import pymupdf

    with open_pdf(path) as doc:
        page = doc[page_no - 1]
        w, h = page.rect.width, page.rect.height
        # words come in the unrotated page's space; page.rect (and the page as rendered, shown, and
        # sent to a model) is turned by its /Rotate
        turn = page.rotation_matrix if page.rotation % 360 else None
        raw = page.get_text("words", sort=True)  # (x0, y0, x1, y1, word, block, line, word_no)
    if sum(ch.isalnum() for r in raw for ch in r[4]) < max(min_chars, 1):
        return None
    words = []
    line_ids: dict[tuple[int, int], int] = {}
    for x0, y0, x1, y1, text, block, line, _ in raw:
        lid = line_ids.setdefault((block, line), len(line_ids))
        if turn is not None:
            x0, y0, x1, y1 = pymupdf.Rect(x0, y0, x1, y1) * turn
        words.append(Word(text, x0 / w, y0 / h, x1 / w, y1 / h, 1.0, lid))
    return words, (w, h)
