"""Readers beside a writer: `index verify` while a build commits, and a long-running reader that
catches up with a build. Real SQLite and FAISS; the few vectors that need no model are random.
"""
import threading

import numpy as np

from index.maintenance import verify
from index.store import Index, NewChunk, NewPage
from index.words import Word

DIM = 16


def _page(doc: int, n: int, rng) -> NewPage:
    v = rng.normal(size=DIM).astype("float32")
    v /= np.linalg.norm(v)
    words = [Word("page", 0.1, 0.1, 0.2, 0.15, 0.9, 0), Word(str(n), 0.25, 0.1, 0.3, 0.15, 0.9, 0)]
    return NewPage(doc, n, 100, 100, "text-layer", f"page {n}", words, None,
                   [NewChunk(f"page {n}", 0, 2, None, v.tobytes())])


def test_verify_while_a_writer_commits_checks_one_state(tmp_path):
    """`index verify` during a build: every check sees one committed state, so a commit in the
    middle of the checks is never reported as a mismatch ("FAIL search vectors")."""
    folder = tmp_path / "idx"
    idx = Index.open(folder, create=True)
    idx.set_meta(embed_model="test", embed_dim=DIM)
    idx.vectors  # noqa: B018 - the builder loads FAISS before adding pages
    doc = idx.add_document("/x.pdf", "0" * 64, 1, 1, "pdf", "x", 10_000)
    rng = np.random.default_rng(0)
    idx.add_pages([_page(doc, n, rng) for n in range(1, 21)], {doc: "x"})
    idx.save_vectors()
    stop = threading.Event()

    def writer():
        n = 21
        while not stop.is_set():
            idx.add_pages([_page(doc, n, rng)], {doc: "x"})
            n += 1
            if n % 7 == 0:
                idx.save_vectors()

    t = threading.Thread(target=writer)
    t.start()
    try:
        reports = [verify(folder) for _ in range(40)]
    finally:
        stop.set()
        t.join()
    failed = [c for r in reports for c in r.checks if not c.ok]
    assert not failed, failed
    assert verify(folder).ok
    idx.close()


def test_a_long_running_reader_catches_up_with_a_build(tmp_path):
    """A server (or chat) that loaded FAISS before a build finds the passages the build added, and not
    those it removed, without a restart."""
    folder = tmp_path / "idx"
    writer = Index.open(folder, create=True)
    writer.set_meta(embed_model="test", embed_dim=DIM)
    writer.vectors  # noqa: B018
    rng = np.random.default_rng(1)
    old = writer.add_document("/old.pdf", "0" * 64, 1, 1, "pdf", "old", 5)
    writer.add_pages([_page(old, n, rng) for n in range(1, 6)], {old: "old"})
    writer.save_vectors()

    reader = Index.open(folder)
    probe = rng.normal(size=DIM).astype("float32")
    assert len(reader.nearest(probe, 10)[1]) == 5  # FAISS loaded by the reader
    new = writer.add_document("/new.pdf", "1" * 64, 1, 1, "pdf", "new", 1)
    page = _page(new, 1, rng)
    [added] = writer.add_pages([page], {new: "new"})
    writer.remove_document(old)  # no save: the file on disk lags, as during a build
    target = np.frombuffer(page.chunks[0].vector, dtype="float32")
    scores, ids = reader.nearest(target, 10)
    assert ids.tolist() == [added] and scores[0] > 0.99
    assert reader.nearest(target, 10, doc_ids=[new])[1].tolist() == [added]
    reader.close()
    writer.close()
