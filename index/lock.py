"""One writer at a time: an exclusive flock on `<index>/write.lock`, released by the OS on any exit."""
from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path

from .errors import IndexFormatError, IndexLocked, IndexReadOnly

LOCK_NAME = "write.lock"


class WriteLock:
    """`with WriteLock(folder): ...` — raises IndexLocked naming the holder if another process writes."""

    def __init__(self, folder: Path, create: bool = True):
        """`create`: make the folder if missing (a build); else a missing index is an error (remove, verify)."""
        self.path = Path(folder).expanduser().resolve() / LOCK_NAME
        self.create = create
        self._fd: int | None = None

    def acquire(self) -> "WriteLock":
        from .location import check_location, make_folder, read_only_message, writable
        from .schema import DB_NAME

        folder = self.path.parent
        check_location(folder)
        if not (folder / DB_NAME).exists() and not self.create:
            raise IndexFormatError(f"no index at {folder}: build one with `pagerag index build PATH --index {folder}`")
        make_folder(folder)
        if not writable(folder, folder / DB_NAME):
            raise IndexReadOnly(read_only_message(folder))
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                raise IndexReadOnly(read_only_message(folder)) from None
            raise
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise IndexLocked(
                f"the index at {self.path.parent} is being written by {holder}; "
                "wait for it to finish (searches keep working meanwhile) or stop that process") from None
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S"),
                "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:300]}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def writer_of(folder: Path) -> str | None:
    """Who is writing the index now ("pid … (`command`, since …)"), or None; takes no lock itself."""
    try:
        fd = os.open(Path(folder) / LOCK_NAME, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return _read_holder(fd)
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "another process"
    return f"pid {info.get('pid')} on {info.get('host')} (`{info.get('command')}`, since {info.get('since')})"
