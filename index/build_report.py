"""What a build is asked (BuildOptions) and what it reports (BuildReport: counts, skipped and partly
indexed files): plain dataclasses, so `index build --json` is `asdict(report)`."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Protocol

from .sources import Limits


class Captioner(Protocol):
    """Anything that describes a page image in words; `key` names the model and prompt (the cache key)."""

    key: str

    def __call__(self, image) -> str: ...


@dataclass
class BuildOptions:
    ocr: str = "auto"
    lang: str = "eng"  # OCR languages, Tesseract style ('deu+eng'); recorded per page
    dpi: int = 200
    force_ocr: bool = False
    prune: bool = False
    embed_model: str | None = None
    jobs: int = field(default_factory=lambda: os.cpu_count() or 1)
    limits: Limits = field(default_factory=Limits)
    captioner: Captioner | None = None
    # seconds a page may take to read before its worker is killed and the page recorded as failed; None: no
    # limit (and with jobs=1, pages are read in the build's own process)
    page_timeout: float | None = None
    retry_failed: bool = False  # read again the pages that failed in earlier builds of unchanged files


@dataclass
class FailedPage:
    page: int
    reason: str  # names the page: 'page 17 took longer than 300 s to read (...)'


@dataclass
class PartialDocument:
    """A file indexed without some of its pages (the others are searchable)."""

    path: str
    pages: int  # in the file
    failed: list[FailedPage]
    earlier: bool = False  # they failed in an earlier build and were not read again (`retry_failed` reads them)

    @property
    def indexed(self) -> int:
        return self.pages - len(self.failed)


@dataclass
class Skip:
    path: str
    reason: str
    is_error: bool


@dataclass
class BuildReport:
    index: str
    ocr_engine: str | None = None
    embed_model: str | None = None
    new: int = 0
    changed: int = 0
    resumed: int = 0
    retried: int = 0  # unchanged files whose failed pages were read again (`retry_failed`)
    unchanged: int = 0
    pruned: int = 0
    pages_read: int = 0
    pages_ocr: int = 0
    pages_copied: int = 0  # from an indexed file with the same bytes (moved, renamed, copied): not read again
    pages_reduced: int = 0  # JPEGs over the pixel limit, read at 1/2, 1/4 or 1/8 of their size to fit it
    chunks_added: int = 0
    captions_made: int = 0
    captions_cached: int = 0
    caption_error: str | None = None  # why captioning stopped, if it did
    seconds: float = 0.0
    interrupted: bool = False
    skipped: list[Skip] = field(default_factory=list)
    partial: list[PartialDocument] = field(default_factory=list)  # files under the paths lacking failed pages

    @property
    def errors(self) -> int:
        """Files skipped for an error, and files indexed without some pages (a partly indexed file is a
        problem too: `index build` exits 3)."""
        return sum(s.is_error for s in self.skipped) + len(self.partial)

    @property
    def pages_per_second(self) -> float:
        return self.pages_read / self.seconds if self.seconds else 0.0
