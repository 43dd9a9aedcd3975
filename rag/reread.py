"""A second reading of a page, with the other OCR engine, for evidence the stored words miss.

    words = second_reading(index, page_id)   # [] when no other engine is installed

When a cited value is not found in a page's stored OCR words (handwriting, a faint stamp,
a field OCR glued to its neighbours), the page is read again with the engine that did not
build the index (RapidOCR after Tesseract, and the other way round), in the language the page
was read with (`pages.lang`). RapidOCR's models read English only: a page Tesseract read in
another language (`--lang deu`, `rus`) has no second reading rather than a misreading of it
(Cyrillic read as Latin look-alikes). On FUNSD forms, this finds about
half of the answers the stored Tesseract words miss (README, "Evidence on the page"). Readings
are cached beside the index (`<index>/rereads.db`), keyed by the file's content hash, page,
rotation, engine and language, so a page is read again at most once.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from contextlib import closing
from pathlib import Path

from index.words import Word

DB_NAME = "rereads.db"
READ_DPI = 200  # PDF pages; images are read at their own size
_engines: dict[str, object] = {}
_lock = threading.Lock()  # one OCR at a time: engines are not thread-safe, and the machine is small


def other_engine(source: str, lang: str = "eng") -> str | None:
    """The engine to read a page again with, one that reads `lang`: 'tesseract' -> 'rapidocr' for
    English, None otherwise (RapidOCR reads English only); anything else -> 'tesseract'."""
    if source == "tesseract":
        return "rapidocr" if lang == "eng" else None
    return "tesseract"


def _engine(name: str, lang: str):
    from index.errors import OcrUnavailable
    from index.ocr import load_engine, resolve_engine, resolve_lang

    if (name, lang) not in _engines:
        try:
            _engines[name, lang] = load_engine(resolve_engine(name), lang=resolve_lang(name, lang))
        except OcrUnavailable:  # the engine or the language pack is not installed (any more)
            _engines[name, lang] = None
    return _engines[name, lang]


def _cache(folder: Path) -> sqlite3.Connection:
    db = sqlite3.connect(Path(folder) / DB_NAME, timeout=30)
    db.execute("CREATE TABLE IF NOT EXISTS rereads (key TEXT PRIMARY KEY, words TEXT NOT NULL)")
    return db


def second_reading(index, page_id: int) -> list[Word]:
    """The page's words as the other OCR engine reads them (cached); [] if it is not installed or the
    page's file cannot be read any more."""
    row = index.page_by_id(page_id)
    if row["source"] == "text-layer":
        return []  # a PDF's own text: nothing to read better
    lang = (row["lang"] if "lang" in row.keys() else None) or "eng"  # text layers and --ocr none: no language
    name = other_engine(row["source"], lang)
    if name is None:
        return []
    rotation = row["rotation"] if "rotation" in row.keys() else 0
    key = f"{index.document(row['path'])['sha256']}:{row['page_no']}:{rotation}:{name}:{lang}"
    try:
        with closing(_cache(index.folder)) as db:
            hit = db.execute("SELECT words FROM rereads WHERE key = ?", (key,)).fetchone()
    except sqlite3.Error:  # a read-only index folder: read, but do not remember
        hit = None
    if hit:
        return [Word(*w) for w in json.loads(hit[0])]
    words = _read(index, page_id, name, lang)
    try:
        with closing(_cache(index.folder)) as db, db:
            db.execute("INSERT OR REPLACE INTO rereads VALUES (?, ?)", (key, json.dumps([list(w) for w in words])))
    except sqlite3.Error:
        pass
    return words


def _read(index, page_id: int, name: str, lang: str) -> list[Word]:
    from .highlight import page_image_by_id

    with _lock:
        engine = _engine(name, lang)
        if engine is None:
            return []
        try:
            return engine.recognize(page_image_by_id(index, page_id, dpi=READ_DPI))
        except OSError:
            return []
