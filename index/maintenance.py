"""Removing documents from an index (under the write lock)."""
from __future__ import annotations

from pathlib import Path

from .lock import WriteLock
from .store import Index


def remove_paths(folder: Path, paths: list[Path]) -> list[tuple[str, int]]:
    """Remove every document whose path is one of `paths` or lies under one; returns (path, pages removed)."""
    targets = [str(Path(p).expanduser().resolve()) for p in paths]
    removed = []
    with WriteLock(folder):
        idx = Index.open(folder)
        try:
            for doc in idx.documents():
                if any(doc["path"] == t or doc["path"].startswith(t.rstrip("/") + "/") for t in targets):
                    removed.append((doc["path"], idx.remove_document(doc["id"])))
            for path, _, _ in idx.skipped():
                if any(path == t or path.startswith(t.rstrip("/") + "/") for t in targets):
                    idx.clear_skip(path)
            idx.save_vectors()
        finally:
            idx.close()
    return removed
