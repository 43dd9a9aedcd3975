"""Where an index lives: the folder checks, and opening its database safely (read-only when it must be).

A location must be a folder (not /dev/null, not a path under a regular file); a folder
this process cannot write is opened read-only and never gets a file created in it.
"""
from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

from .errors import IndexLocationError, IndexReadOnly


def check_location(folder: Path) -> None:
    """An index location must be a folder, or not exist yet below a folder (not /dev/null, not under a file)."""
    try:
        os.stat(folder)
    except FileNotFoundError:
        pass
    except OSError as e:  # a name too long, a loop of links, a folder on the way not searchable
        raise IndexLocationError(f"the index location {folder} cannot be used ({e.strerror}); "
                                 "point --index (or PAGERAG_INDEX) at a folder") from None
    if folder.exists():
        if not folder.is_dir():
            raise IndexLocationError(f"the index location {folder} exists and is not a folder; "
                                     "point --index (or PAGERAG_INDEX) at a folder")
        return
    for parent in folder.parents:
        if parent.exists():
            if not parent.is_dir():
                raise IndexLocationError(f"the index location {folder} lies under {parent}, which is not a folder; "
                                         "point --index (or PAGERAG_INDEX) at a folder")
            return


def make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise IndexReadOnly(f"cannot create the index folder {folder} ({e.strerror}); "
                                "point --index at a folder you can write") from None
        raise IndexLocationError(f"cannot create the index folder {folder} ({e.strerror})") from None


def writable(folder: Path, db_path: Path) -> bool:
    """Whether this process may write here (a read-only mount, permissions, or a read-only index.db)."""
    return os.access(folder, os.W_OK) and (not db_path.exists() or os.access(db_path, os.W_OK))


def read_only_message(folder: Path) -> str:
    return (f"the index at {folder} is read-only (for this user or on this mount): searching it works, "
            "but changing it does not; copy the folder somewhere writable to update it")


def _connect(db_path: Path, readonly: bool) -> sqlite3.Connection:
    """A connection; read-only ones never create files: `immutable` when even -shm cannot be made."""
    if not readonly:
        db = sqlite3.connect(db_path, timeout=30, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA synchronous=NORMAL")
        return db
    from urllib.parse import quote

    wal = db_path.with_name(db_path.name + "-wal")
    pending = wal.exists() and wal.stat().st_size > 0
    mode = "ro" if (pending or os.access(db_path.parent, os.W_OK)) else "ro&immutable=1"
    db = sqlite3.connect(f"file:{quote(str(db_path))}?mode={mode}", uri=True, timeout=30,
                         isolation_level=None, check_same_thread=False)
    try:
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError as e:
        if pending:
            raise IndexReadOnly(
                f"the index at {db_path.parent} is read-only and holds writes not yet merged ({wal.name}); "
                "open it once where it is writable (any `pagerag index status`) to merge them") from None
        raise IndexReadOnly(f"cannot open the read-only index at {db_path.parent} ({e})") from None
    return db


def quick_check(db: sqlite3.Connection) -> list[str]:
    """SQLite's quick_check: [] when the file is sound, else its findings."""
    rows = [r[0] for r in db.execute("PRAGMA quick_check")]
    return [] if rows == ["ok"] else rows


def db_identity(folder) -> tuple | None:
    """(device, inode) of `folder`/index.db, None when there is none. A process that keeps an index open
    (`serve`, `chat`) compares it before each use: an open SQLite file outlives its name, so a deleted
    index would go on answering, and one built again in its place would not be seen."""
    from .schema import DB_NAME

    try:
        st = os.stat(Path(folder) / DB_NAME)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def gone_message(folder, command: str) -> str:
    return (f"the index at {folder} was deleted or moved after `pagerag {command}` opened it; build it again "
            f"there (`pagerag {command}` then uses the new one), or start `pagerag {command} --index` again with "
            "its new place")

