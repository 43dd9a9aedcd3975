"""File paths as the index keeps them, and paths a user gives matched to them.

File names are kept in the index as text: a name that is not valid UTF-8 (Python's
surrogate escapes) is stored with those bytes mapped to a private-use range
(`db_path`), read back with `fs_path` and printed with `shown`.
"""
from __future__ import annotations

import os
from pathlib import Path


def path_forms(given: str | Path) -> list[str]:
    """How a path the user gives may be stored, most literal first: absolute as written (a link inside a
    corpus is indexed under its own name), then with links resolved (a corpus given through a link).
    path_forms('scans/link.png') -> ['/home/u/scans/link.png', '/home/u/scans/real.png']."""
    given = Path(given).expanduser()
    forms = [db_path(os.path.abspath(given)), db_path(given.resolve())]
    return forms[:1] if forms[0] == forms[1] else forms


def is_under(path: str, root: str) -> bool:
    """Whether a stored path is `root` or lies under it: ('/a/b.pdf', '/a') -> True, ('/ab.pdf', '/a') -> False."""
    return path == root or path.startswith(root.rstrip("/") + "/")


# bytes of a non-UTF-8 name (surrogates U+DC80..U+DCFF) <-> private-use U+F780..U+F7FF
_TO_DB = {c: c - 0xDC80 + 0xF780 for c in range(0xDC80, 0xDD00)}


_FROM_DB = {v: k for k, v in _TO_DB.items()}


def db_path(path: str | Path) -> str:
    """The path as storable text: 'caf\udce9.png' (bytes caf\xe9) -> 'caf\uf7e9.png'; valid UTF-8 unchanged."""
    path = str(path)
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return path.translate(_TO_DB)


def fs_path(key: str) -> str:
    """The file system path of a stored path (the inverse of db_path)."""
    return key.translate(_FROM_DB) if any(0xF780 <= ord(c) <= 0xF7FF for c in key) else key


def valid_text(text: str) -> str:
    """Free text (a title, a reason) as valid UTF-8: undecodable bytes of a file name become '\\xNN'."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def shown(key: str) -> str:
    """A stored path as printable text: undecodable bytes as \\xNN."""
    return os.fsencode(fs_path(key)).decode("utf-8", "backslashreplace")
