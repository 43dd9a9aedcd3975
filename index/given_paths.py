"""Paths a person gives (`--in`, `show FILE`, `index remove`, an eval's gold), matched to the paths the index stores.

    path_key("Bjo\u0308rn.pdf") == path_key("Bj\u00f6rn.pdf")   # NFD (as macOS writes names) and NFC: one key
    on_disk("/scans/Bjo\u0308rn")   # -> "/scans/Bj\u00f6rn" where the folder is spelled NFC on disk; None if absent
    nearest("/scans/2O23", stored)  # -> ["/scans/2023"]: indexed folders and files named most like it
    not_indexed_hint(...)           # what to say when nothing is indexed at a path: index it, or it does not exist

The index stores a path as the file system returned it (bytes that are not UTF-8 included,
`stored_paths.db_path`) and opens it so; only comparisons go through `path_key`, and an exact
match always wins over a match by key (two files whose names differ only in normalisation
stay two files).
"""
from __future__ import annotations

import os
import unicodedata

from .stored_paths import db_path, fs_path, is_under
from .words import fold

NEAREST = 3  # indexed places named in a "not indexed" message
NEAREST_MIN = 0.5  # how alike (difflib ratio of the last names, case folded) a place must be to be named


def path_key(path: str) -> str:
    """A path as compared: Unicode NFC ('o' + combining diaeresis -> 'ö'); stored non-UTF-8 bytes unchanged."""
    return unicodedata.normalize("NFC", str(path))


def under_key(path: str, root: str) -> bool:
    """`is_under` on keys: ('/a/Bjo\u0308rn/x.pdf', '/a/Bj\u00f6rn') -> True."""
    return is_under(path_key(path), path_key(root))


def on_disk(path: str) -> str | None:
    """The path as the file system spells it (each name matched by `path_key` where it is not there as given),
    or None when nothing is there."""
    path = fs_path(str(path))
    if os.path.lexists(path):
        return path
    parent, name = os.path.split(path)
    if not name or parent == path:
        return None
    found = on_disk(parent)
    if found is None:
        return None
    try:
        names = os.listdir(found)
    except OSError:
        return None
    key = path_key(db_path(name))
    return next((os.path.join(found, n) for n in sorted(names) if path_key(db_path(n)) == key), None)


def nearest(given: str, stored: list[str], n: int = NEAREST) -> list[str]:
    """The indexed files and folders (the folders holding them, down from the one all share) whose names read
    most like that of `given` (extensions, case and accents aside), best first; [] when none is NEAREST_MIN
    alike. nearest('/d/bjorn.pdf', ['/d/M\u00fcller/Bj\u00f6rn.pdf', '/d/parking.pdf']) -> ['/d/M\u00fcller/Bj\u00f6rn.pdf']"""
    import difflib

    if not stored:
        return []
    top = os.path.commonpath(stored) if len(stored) > 1 else os.path.dirname(stored[0])
    places = set(stored)
    for path in stored:
        folder = os.path.dirname(path)
        while len(folder) >= len(top) and folder not in places:
            places.add(folder)
            folder = os.path.dirname(folder)

    def name(path: str) -> str:
        return fold(os.path.splitext(os.path.basename(path.rstrip("/")) or path)[0]).casefold()

    want = name(given)
    scored = sorted(((difflib.SequenceMatcher(None, want, name(p)).ratio(), p) for p in places),
                    key=lambda s: (-s[0], len(s[1]), s[1]))
    return [p for score, p in scored[:n] if score >= NEAREST_MIN]


def not_indexed_hint(given: str, stored: list[str], build: str | None = None) -> str:
    """What to say after 'nothing is indexed at GIVEN': when it exists, to index it (`build`, the command) or, with
    no command, that it is not; when it does not exist, that, and the indexed places named most like it."""
    from .stored_paths import shown

    status = "`pagerag index status` lists what is indexed"
    if on_disk(given) is not None:
        return f"check the path, or index it with `{build}`" if build else f"it is not indexed; {status}"
    near = nearest(given, stored)
    if near:
        return "it does not exist; indexed with a name like it: " + ", ".join(shown(p) for p in near)
    return f"it does not exist; {status}"
