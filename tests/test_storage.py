"""Index storage: packed words, float16 vectors, and the FAISS layout chosen by size (flat / IVF)."""
import numpy as np
import pytest

from index import vector_cache, vector_layout
from index.store import Index, NewChunk, NewPage
from index.vector_files import FAISS_NAME, STAMP_NAME
from index.vector_layout import Layout, layout_for
from index.vectors import VectorStore
from index.wordpack import WordsFormatError, pack_words, unpack_words
from index.words import Word, page_text

DIM = 32


def _words(lines: list[list[str]]) -> list[Word]:
    out = []
    for lid, line in enumerate(lines):
        for i, t in enumerate(line):
            out.append(Word(t, 0.1 * i, 0.05 * lid, 0.1 * i + 0.0873, 0.05 * lid + 0.04, 0.91234, lid))
    return out


@pytest.mark.parametrize("words, text", [
    (_words([["Invoice", "No.", "4471"], ["Total", "RM", "112.45"]]), None),  # texts come from the page text
    (_words([["naïve", "café"], ["日本語", "テキスト"]]), None),
    ([], ""),
    (_words([["two words", "in one"], ["", "box"]]), None),  # would not round-trip through the text: kept inside
    (_words([["Total", "12.00"]]), "Total 12.00 (caption-only text that differs)"),
])
def test_words_round_trip(words, text):
    text = page_text(words) if text is None else text
    back = unpack_words(pack_words(words, text), text)
    assert [(w.text, w.line) for w in back] == [(w.text, w.line) for w in words]
    for a, b in zip(back, words):
        assert np.allclose(a[1:6], b[1:6], atol=1 / 65535)


def test_words_blob_is_smaller_than_json_and_versioned():
    import json

    words = _words([[f"word{i}{j}" for i in range(12)] for j in range(40)])
    text = page_text(words)
    blob = pack_words(words, text)
    as_json = json.dumps([[w[0], *(round(v, 4) for v in w[1:5]), round(w[5], 3), w[6]] for w in words])
    assert len(blob) * 4 < len(as_json.encode())
    with pytest.raises(WordsFormatError, match="version 9"):
        unpack_words(blob[:1] + bytes([9]) + blob[2:], text)
    with pytest.raises(WordsFormatError, match="not a pagerag words blob"):
        unpack_words(b'[["a"', text)


def test_layout_by_size():
    assert layout_for(1000) == Layout()
    big = layout_for(1_000_000)
    assert big == Layout("ivf", 1024, vector_layout._nprobe(1024), "SQ8", 1_000_000, vector_layout.RESCORE)
    assert big.rescore >= 10  # re-scored: recall@10 >= 0.98 at 10^6 (bench/scale.py)
    older = Layout("ivf", 1024, 128, "SQ8", 1_000_000)  # recorded by an earlier version: no re-scoring
    assert layout_for(1_000_000, older) == big  # search parameters follow the code, trained lists are kept
    assert layout_for(1_500_000, big) == big  # grown less than RETRAIN_GROWTH-fold: kept
    assert layout_for(5_000_000, big).nlist > big.nlist  # retrained, more lists
    assert layout_for(vector_layout.APPROX_THRESHOLD // 2 + 1, big) == big  # hysteresis: no flip-flop
    assert layout_for(vector_layout.APPROX_THRESHOLD // 2 - 1, big) == Layout()
    assert Layout.from_json(big.to_json()) == big


def _clustered(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(40, DIM))
    v = centres[rng.integers(0, 40, n)] + 0.35 * rng.normal(size=(n, DIM))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype("float32")


def _fill(folder, n: int) -> Index:
    """An index of n one-passage pages with random clustered vectors (no embedding model involved)."""
    idx = Index.open(folder, create=True)
    idx.set_meta(embed_model="test", embed_dim=DIM)
    idx.vectors  # noqa: B018 - loaded before pages are added, as the builder does
    doc = idx.add_document("/x.pdf", "0" * 64, 1, 1, "pdf", "x", n)
    vecs = _clustered(n, 0)
    pages = [NewPage(doc, i + 1, 100, 100, "text-layer", f"page {i}", _words([["page", str(i)]]), None,
                     [NewChunk(f"page {i}", 0, 2, (0.1, 0.1, 0.2, 0.2), vecs[i].tobytes())]) for i in range(n)]
    idx.add_pages(pages, {doc: "x"})  # FAISS, loaded, gets the vectors too
    return idx


def test_vectors_kept_as_float16_and_faiss_holds_the_same(tmp_path):
    idx = _fill(tmp_path / "idx", 50)
    blob, = idx.db.execute("SELECT vector FROM chunks LIMIT 1").fetchone()
    assert len(blob) == 2 * DIM
    assert idx.page_words(1)[1].text == "0"
    q = _clustered(1, 5)[0]
    s_mem, i_mem = idx.vectors.search(q, 10)
    idx.save_vectors()
    (tmp_path / "idx" / FAISS_NAME).unlink()  # the cache lost: rebuilt from SQLite's float16
    again = Index.open(tmp_path / "idx")
    s_db, i_db = again.vectors.search(q, 10)
    assert i_db.tolist() == i_mem.tolist() and np.allclose(s_db, s_mem, atol=1e-6)


def test_ivf_past_the_threshold_with_adds_removes_and_a_lost_file(tmp_path, monkeypatch):
    monkeypatch.setattr(vector_layout, "APPROX_THRESHOLD", 2000)
    folder = tmp_path / "idx"
    idx = _fill(folder, 4000)
    idx.save_vectors()
    layout = Layout.from_json(idx.meta["vector_index"])
    nprobe = vector_layout._nprobe(64)
    assert layout == Layout("ivf", 64, nprobe, "SQ8", 4000, vector_layout.RESCORE)  # parameters recorded in meta
    assert idx.vector_layout() == layout
    on_disk = VectorStore(folder, DIM).layout  # the file, read back, is what meta records: no retraining
    assert (on_disk.kind, on_disk.nlist, on_disk.nprobe, on_disk.encoding) == ("ivf", 64, nprobe, "SQ8")
    assert VectorStore(folder, DIM).mapped  # a reader maps the lists instead of reading them

    exact = _clustered(4000, 0).astype("float16").astype("float32")
    queries = _clustered(50, 1)
    reopened = Index.open(folder)
    hits = 0
    for q in queries:
        _, ids = reopened.vectors.search(q, 10)
        truth = np.argsort(-exact @ q)[:10] + 1  # chunk ids start at 1
        hits += len(set(ids.tolist()) & set(truth.tolist()))
    assert hits / 500 >= 0.95

    # a filter inside FAISS: only odd chunk ids
    odd = np.arange(1, 4001, 2, dtype="int64")
    _, ids = reopened.vectors.search(queries[0], 10, selector=__import__("faiss").IDSelectorBatch(odd))
    assert len(ids) == 10 and all(i % 2 == 1 for i in ids.tolist() if i >= 0)

    # removal: the document goes, its chunks leave the IVF index, on disk too
    reopened.remove_document(1)
    reopened.save_vectors()
    assert len(Index.open(folder).vectors) == 0

    # a lost file with meta still saying IVF: readers reconcile exactly (flat), the writer retrains
    idx2 = _fill(tmp_path / "idx2", 3000)
    idx2.save_vectors()
    (tmp_path / "idx2" / FAISS_NAME).unlink()
    reader = Index.open(tmp_path / "idx2")
    assert reader.vectors.layout.kind == "flat" and len(reader.vectors) == 3000
    reader.save_vectors()
    assert VectorStore(tmp_path / "idx2", DIM).layout.kind == "ivf"


def test_ivf_candidates_are_rescored_exactly_from_sqlite(tmp_path, monkeypatch):
    """IVF (8-bit codes) finds candidates; their float16 vectors in SQLite give the exact scores and order."""
    monkeypatch.setattr(vector_layout, "APPROX_THRESHOLD", 2000)
    monkeypatch.setattr(vector_layout, "_nprobe", lambda nlist: nlist)  # every list visited: candidates hold the top 10
    folder = tmp_path / "idx"
    _fill(folder, 4000).save_vectors()
    idx = Index.open(folder)
    assert idx.vector_layout().rescore == vector_layout.RESCORE and idx.vectors.layout.kind == "ivf"
    ids, stored = idx.all_vectors()
    codes_only = 0
    for q in _clustered(20, 3):
        exact = stored @ q
        order = np.lexsort((ids, -exact))[:10]
        scores, got = idx.nearest(q, 10)
        assert got.tolist() == ids[order].tolist()
        assert np.allclose(scores, exact[order], atol=1e-5)
        s_codes, _ = idx.vectors.search(q, 10)  # without re-scoring: the codes' approximate scores
        codes_only += not np.allclose(s_codes, exact[order], atol=1e-5)
    assert codes_only == 20  # re-scoring is what makes the scores exact
    # a scope wider than EXACT_BELOW goes through FAISS's selector and is re-scored the same way
    monkeypatch.setattr(vector_cache, "EXACT_BELOW", 0)
    q = _clustered(1, 4)[0]
    scores, got = idx.nearest(q, 10, doc_ids=[1])
    assert got.tolist() == ids[np.lexsort((ids, -(stored @ q)))[:10]].tolist()
    # passages removed since FAISS was loaded are dropped from the candidates, not served
    removed = got[:3].tolist()
    idx.db.execute(f"DELETE FROM chunks WHERE id IN ({','.join(map(str, removed))})")
    _, after = idx.nearest(q, 10)
    assert not set(after.tolist()) & set(removed) and len(after) == 10


def test_a_mapped_ivf_file_that_does_not_match_sqlite_is_not_served(tmp_path, monkeypatch):
    """The mapped (read-only) IVF lists follow the same stamp rules: stale is brought up to date
    by ids (copied into memory first), foreign is rebuilt from SQLite."""
    import json
    import shutil

    monkeypatch.setattr(vector_layout, "APPROX_THRESHOLD", 2000)
    folder, other = tmp_path / "idx", tmp_path / "other"
    _fill(folder, 3000).save_vectors()
    _fill(other, 3000).save_vectors()  # same vectors, another database
    old = (folder / FAISS_NAME).read_bytes(), (folder / STAMP_NAME).read_text()
    writer = Index.open(folder)
    doc = writer.add_document("/y.pdf", "1" * 64, 1, 1, "pdf", "y", 1)
    v = _clustered(1, 9)[0]
    new_id, = writer.add_pages([NewPage(doc, 1, 100, 100, "text-layer", "y", _words([["y"]]), None,
                                        [NewChunk("y", 0, 1, None, v.tobytes())])], {doc: "y"})
    writer.remove_document(1)  # chunks 1-3000 go
    writer.save_vectors()
    # the old file comes back with its own stamp (as after a crash before the new one was renamed in)
    (folder / FAISS_NAME).write_bytes(old[0])
    stamp = json.loads(old[1])
    stamp["mtime_ns"] = (folder / FAISS_NAME).stat().st_mtime_ns
    (folder / STAMP_NAME).write_text(json.dumps(stamp))
    reader = Index.open(folder)
    assert VectorStore(folder, DIM).mapped and VectorStore(folder, DIM).stamp["gen"] < reader.vector_stamp()["gen"]
    assert sorted(reader.vectors.ids().tolist()) == [new_id] and not reader.vectors.mapped
    assert reader.nearest(v, 5)[1].tolist() == [new_id]
    # another database's file and stamp, copied over: rebuilt from SQLite, never served
    shutil.copy(other / FAISS_NAME, folder / FAISS_NAME)
    shutil.copy(other / STAMP_NAME, folder / STAMP_NAME)
    stamp = json.loads((folder / STAMP_NAME).read_text())
    stamp["mtime_ns"] = (folder / FAISS_NAME).stat().st_mtime_ns
    (folder / STAMP_NAME).write_text(json.dumps(stamp))
    assert VectorStore(folder, DIM).mapped and len(VectorStore(folder, DIM)) == 3000
    reader = Index.open(folder)
    assert reader.vectors.ids().tolist() == [new_id]
    assert reader.nearest(v, 5)[1].tolist() == [new_id]
    # a current file is served as mapped, and saving it copies the lists in (no "on disk" lists written)
    writer = Index.open(other)
    assert writer.vectors.mapped and len(writer.vectors) == 3000
    writer.vectors.set_nprobe(7)
    writer.vectors.save()
    again = VectorStore(other, DIM)
    assert again.mapped and again.layout.nprobe == 7 and again.stamp == writer.vector_stamp()
    assert sorted(again.ids().tolist()) == list(range(1, 3001))


def _text_index(folder, texts: list[str]) -> Index:
    idx = Index.open(folder, create=True)
    idx.set_meta(embed_model="test", embed_dim=DIM)
    doc = idx.add_document("/t.pdf", "0" * 64, 1, 1, "pdf", "t", len(texts))
    vec = _clustered(1, 0)[0].tobytes()
    idx.add_pages([NewPage(doc, i + 1, 100, 100, "text-layer", t, _words([t.split()]), None,
                           [NewChunk(t, 0, 1, None, vec)]) for i, t in enumerate(texts)], {doc: "t"})
    return idx


def test_lexical_leaves_out_the_commonest_phrases_on_large_indexes(tmp_path, monkeypatch):
    from index import lexical

    # 'record' on every page, 'harbor' on 30%, 'ledger' on 10%, 'zephyr' on two pages
    texts = [" ".join(["record", f"n{i}", *(["harbor"] if i % 10 < 3 else []), *(["ledger"] if i % 10 == 5 else []),
                       *(["zephyr"] if i in (17, 401) else [])]) for i in range(2000)]
    idx = _text_index(tmp_path / "idx", texts)
    asked = '"record" OR "harbor" OR "ledger" OR "zephyr"'
    assert idx.without_common(asked) == asked  # a small index is searched as asked
    monkeypatch.setattr(lexical, "COMMON_MIN_PAGES", 1000)
    # past half the pages a phrase has no bm25 weight: always out; then the budget (postings) decides
    assert idx.without_common(asked, budget=10 ** 9) == '"harbor" OR "ledger" OR "zephyr"'
    assert idx.without_common(asked, budget=300) == '"ledger" OR "zephyr"'
    assert idx.without_common(asked, budget=1) == '"zephyr"'  # the rarest stays, whatever the budget
    assert idx.without_common('"record"') == ""
    assert idx.without_common('"zephyr" AND "harbor"') == '"zephyr" AND "harbor"'  # not ours: as is
    assert [p for p, _ in idx.lexical(asked, 5, budget=300)] == [18, 402, *[p for p, _ in idx.lexical('"ledger"', 3)]]
    assert idx.lexical('"record"', 5) == []


def test_lexical_scores_only_the_pages_of_the_rarest_phrases_by_every_phrase(tmp_path, monkeypatch):
    from index import lexical

    # 'harbor' on 30% of pages, 'ledger' on 10%, 'zephyr' on two pages, one of them with 'ledger'
    texts = [" ".join([f"n{i}", *(["harbor"] if i % 10 < 3 else []), *(["ledger"] if i % 10 == 5 else []),
                       *(["zephyr"] if i in (15, 401) else [])]) for i in range(2000)]
    idx = _text_index(tmp_path / "idx", texts)
    monkeypatch.setattr(lexical, "COMMON_MIN_PAGES", 1000)
    asked = '"harbor" OR "ledger" OR "zephyr"'
    assert idx.lexical_plan(asked, budget=10 ** 9, candidates=50) == (asked, '"zephyr"')
    assert idx.lexical_plan(asked, budget=10 ** 9, candidates=10 ** 9) == (asked, None)  # all fit: every page
    assert idx.lexical_plan(asked, budget=300, candidates=10 ** 9) == ('"ledger" OR "zephyr"', None)
    every = dict(idx.lexical(asked, 2000, budget=10 ** 9, candidates=10 ** 9))
    assert len(every) == 800  # pages holding any of the phrases
    scored = idx.lexical(asked, 10, budget=10 ** 9, candidates=50)
    assert [p for p, _ in scored] == [16, 402]  # the pages holding 'zephyr' only; 'ledger' lifts page 16
    assert all(abs(s - every[p]) < 1e-9 for p, s in scored)  # scored as the full query scores them
    # a scope still applies to the candidates
    assert idx.lexical(asked, 10, doc_ids=[999], budget=10 ** 9, candidates=50) == []
