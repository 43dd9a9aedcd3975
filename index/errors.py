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
