"""Named exceptions of the index package. The CLI turns them into messages."""


class PageragError(Exception):
    """Base class: a problem the user can act on; the message says how."""


class UnsupportedFile(PageragError):
    """The file type is not one pagerag reads."""


class BadInput(PageragError):
    """A file that should be readable is not: truncated, encrypted, too large, corrupt."""


class IndexFormatError(PageragError):
    """The index folder was written by another format version, or is not an index."""


class ModelMismatch(PageragError):
    """The index was built with another embedding model than the one asked for."""


class IndexLocked(PageragError):
    """Another process is writing to the index."""


class OcrUnavailable(PageragError):
    """The requested OCR engine is not installed."""


class EmbedderUnavailable(PageragError):
    """The embedding model cannot be loaded (missing locally, hub unreachable)."""


class NotIndexed(PageragError):
    """A path or page asked for is not in the index."""


class IndexLocationError(PageragError):
    """The index location is not a folder (a file, a device) or cannot be created."""


class IndexGone(PageragError):
    """The index a long-running process (`serve`) opened was deleted or moved away meanwhile."""


class IndexReadOnly(PageragError):
    """A write was asked of an index in a folder this process cannot write."""


class IndexDamaged(PageragError):
    """index.db fails SQLite's own checks: the file was damaged outside pagerag."""


class DiskFull(PageragError):
    """The disk filled up during a write; what was committed before is intact."""


class BadArgument(PageragError):
    """A path or value given by the user cannot be right (empty, matches nothing)."""


def damaged_message(folder, detail: str) -> str:
    return (f"the index at {folder} is damaged ({detail}); `pagerag index verify --index {folder}` "
            "says what is wrong. Rebuild it into a new folder with `pagerag index build PATH --index NEW_DIR`, "
            "or restore a backup")


class IndexIOFailed(PageragError):
    """SQLite could not read or write index.db (an I/O error, a file-size limit): not a damaged index."""


def database_error(folder, e: Exception) -> PageragError:
    """The named error for an SQLite error on the index at `folder`, by SQLite's own code: only corruption
    is 'damaged'. A database locked by another program, or an I/O error (a file-size limit, a drive that
    went away), leaves the index as it was and must not send anyone to rebuild it."""
    name = getattr(e, "sqlite_errorname", "") or ""
    text = str(e)
    if name == "SQLITE_FULL" or "disk is full" in text:
        return DiskFull(f"the disk holding the index {folder} is full: what was committed before is kept; free some "
                        "space and run the command again")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "database is locked" in text:
        return IndexLocked(f"the index database {folder}/index.db is locked by another program (a pagerag build "
                           "would have been named: this is something else, such as a database browser, a `sqlite3` "
                           "shell, or a backup or sync tool holding it); close it and run the command again")
    if name.startswith("SQLITE_IOERR") or "disk I/O error" in text:
        return IndexIOFailed(f"reading or writing the index at {folder} failed ({text}): the disk, its mount (a "
                             "network or USB drive that went away), or a file-size limit (`ulimit -f`); the index "
                             "keeps what was committed before. Once that is fixed, `pagerag index verify --index "
                             f"{folder}` checks it and the same command goes on")
    return IndexDamaged(damaged_message(folder, text))
