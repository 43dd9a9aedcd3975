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
