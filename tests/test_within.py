"""Search within documents (`--in`): the filter runs inside FAISS and FTS5, for flat and approximate indexes."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import cli
from index import vector_cache, vector_layout
from index.errors import NotIndexed
from index.store import Index, NewChunk, NewPage
from index.vector_values import unpack_vectors
from index.words import Word
from rag.retrieve import Retriever


DIM = 32


def fill(folder, docs: int, pages: int) -> Index:
    """An index of `docs` documents of `pages` one-passage pages with random vectors (no model involved)."""
    rng = np.random.default_rng(0)
    idx = Index.open(folder, create=True)
    idx.set_meta(embed_model="test", embed_dim=DIM)
    idx.vectors  # noqa: B018 - loaded before pages are added, as the builder does
    for d in range(docs):
        doc = idx.add_document(f"/docs/d{d}.pdf", "0" * 64, 1, 1, "pdf", f"d{d}", pages)
        vecs = rng.normal(size=(pages, DIM)).astype("float32")
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        new = [NewPage(doc, i + 1, 100, 100, "text-layer", f"p{i}", [Word("p", 0.1, 0.1, 0.2, 0.2, 1.0, 0)], None,
                       [NewChunk(f"p{i}", 0, 1, (0.1, 0.1, 0.2, 0.2), vecs[i].tobytes())]) for i in range(pages)]
        idx.add_pages(new, {doc: f"d{d}"})  # FAISS, loaded, gets the vectors too
    idx.save_vectors()
    return Index.open(folder)


def brute_force(idx, query, doc_ids, k):
    ids = idx.chunk_ids_of_documents(doc_ids)
    blobs = [idx.db.execute("SELECT vector FROM chunks WHERE id = ?", (int(i),)).fetchone()[0] for i in ids]
    scores = unpack_vectors(blobs, DIM) @ query
    return ids[np.argsort(-scores, kind="stable")[:k]].tolist()


@pytest.mark.parametrize("layout", ["flat", "ivf"])
def test_nearest_within_documents_is_exact_and_scoped(tmp_path, monkeypatch, layout):
    if layout == "ivf":
        monkeypatch.setattr(vector_layout, "APPROX_THRESHOLD", 2000)
    idx = fill(tmp_path / "idx", docs=10, pages=300)
    assert idx.vectors.layout.kind == layout
    query = np.random.default_rng(1).normal(size=DIM).astype("float32")
    query /= np.linalg.norm(query)
    for scope in ([3], [0, 7], [2, 4, 9]):
        _, got = idx.nearest(query, 10, scope)
        assert got.tolist() == brute_force(idx, query, scope, 10)
    # past the exact-scoring size the selector does the work inside FAISS: scoped, even if approximate
    monkeypatch.setattr(vector_cache, "EXACT_BELOW", 0)
    wide = list(range(1, 10))
    scores, got = idx.nearest(query, 20, wide)
    allowed = set(idx.chunk_ids_of_documents(wide).tolist())
    assert len(got) == 20 and set(got.tolist()) <= allowed
    if layout == "flat":
        assert got.tolist() == brute_force(idx, query, wide, 20)


@pytest.mark.slow
def test_search_within_a_file_or_folder(sample_index, sample_corpus):
    retriever = Retriever(Index.open(sample_index))
    question = "What is the total amount due on the invoice?"
    everything = retriever.search(question, k=15)
    assert {h.path.rsplit("/", 2)[1] for h in everything} - {"invoices"}  # other folders too

    for mode in ("hybrid", "dense", "lexical"):
        hits = retriever.search(question, k=15, mode=mode, within=[sample_corpus / "invoices"])
        assert hits and all(h.path.startswith(str(sample_corpus / "invoices") + "/") for h in hits)
    one = sample_corpus / "reports" / "harbor-city-water-annual-report-2023.pdf"
    hits = retriever.search("capital budget", k=10, within=[one])
    assert {h.path for h in hits} == {str(one)} and len(hits) == 4  # every page of it, and nothing else
    assert hits[0].page == 3
    # a question worded for a document finds the page inside it
    hits = retriever.search("How many miles of water main were replaced?", k=1,
                            within=[one, sample_corpus / "reports" / "minutes-2024-q1.tif"])
    assert (hits[0].path, hits[0].page) == (str(one), 1)


@pytest.mark.slow
def test_within_a_folder_is_a_path_prefix_not_a_string_prefix(sample_index, sample_corpus):
    idx = Index.open(sample_index)
    invoices = idx.documents_under([sample_corpus / "invoices"])
    assert len(invoices) == 3
    with pytest.raises(NotIndexed, match="nothing is indexed at or under .*invoice"):
        idx.documents_under([sample_corpus / "invoice"])  # a prefix of 'invoices', not a folder of it
    assert idx.documents_under([sample_corpus]) == sorted(r["id"] for r in idx.documents())


@pytest.mark.slow
def test_cli_in_option(sample_index, sample_corpus):
    runner = CliRunner()
    result = runner.invoke(cli, ["search", "total amount due", "--json", "-k", "10", "--in",
                                 str(sample_corpus / "invoices" / "sunmeadow-catering-invoice.jpg"), "--in",
                                 str(sample_corpus / "letters"), "--index", str(sample_index)], catch_exceptions=False)
    assert result.exit_code == 0
    names = [h["path"].rsplit("/", 1)[1] for h in json.loads(result.output)]
    assert sorted(names) == ["pinecrest-rent-increase-notice.jpg", "sunmeadow-catering-invoice.jpg"]
    bad = runner.invoke(cli, ["search", "total", "--in", str(sample_corpus / "nope"), "--index", str(sample_index)])
    assert bad.exit_code == 1 and "nothing is indexed at or under" in bad.output and "Traceback" not in bad.output
