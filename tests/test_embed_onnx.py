"""The ONNX encoder (no torch) gives sentence-transformers' vectors and rankings, or steps aside with a note."""
import json
import logging
import os
import random
from pathlib import Path

import numpy as np
import pytest

from index import onnx_export
from index.embed import UNSUPPORTED_FILE, Embedder, OnnxEmbedder, cache_root, load_embedder, model_key
from index.embed_models import DEFAULT_MODEL, bundled_path
from index.embed_onnx import INT8_FILE, INT8_UNSUPPORTED_FILE, ONNX_FILE
from index.onnx_export import MIN_INT8_COSINE
from index.store import Index
from rag.retrieve import Retriever


def varied_texts(n: int = 300) -> list[str]:
    """Empty-ish, short, long past 256 tokens, unicode (accents, CJK, Greek, Cyrillic, emoji, ligatures)."""
    rng = random.Random(7)
    vocab = ("invoice total due board meeting parking lot capital budget water quality receipt tax the of "
             "Ünïcödé café naïve 東京都 Ελληνικά Привет 🙂 ﬁnal 12/02/2018 $1,234.56 CRL-1182 e-mail").split()
    texts = ["", " ", "\n\t", "a", "?", "  leading and trailing spaces  "]
    while len(texts) < n:
        k = rng.choice([1, 2, 5, 12, 40, 120, 300, 600])
        texts.append(" ".join(rng.choice(vocab) for _ in range(k)))
    return texts


@pytest.fixture(scope="module")
def encoders():
    onnx = load_embedder(DEFAULT_MODEL)
    assert isinstance(onnx, OnnxEmbedder), "the bundled MiniLM must export"
    return onnx, Embedder(DEFAULT_MODEL)


@pytest.mark.slow
def test_vectors_equal_sentence_transformers(encoders):
    onnx, st = encoders
    texts = varied_texts()
    got, want = onnx.encode(texts), st.encode(texts)
    assert got.shape == want.shape == (300, 384) and got.dtype == np.float32
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert (got * want).sum(axis=1).min() >= 0.9999
    assert max(len(onnx.tokenizer.encode(t).ids) for t in texts) == 256  # truncation at max_seq_length was exercised
    alone = np.stack([onnx.encode_query(t) for t in texts[:40]])  # one at a time: no padding
    assert (alone * want[:40]).sum(axis=1).min() >= 0.9999


def test_runs_are_even_across_threads_and_within_the_token_cap():
    from index.embed_onnx import MAX_BATCH_TOKENS, runs

    assert [len(r) for r in runs([120] * 10, 32, 2)] == [3, 3, 2, 2]  # greedy 4, 4, 2 would idle one thread
    assert [len(r) for r in runs([120] * 10, 32, 1)] == [4, 4, 2]
    rng = random.Random(3)
    for _ in range(200):
        lengths = sorted((rng.choice([3, 20, 130, 256]) for _ in range(rng.randrange(0, 60))), reverse=True)
        for threads in (1, 2, 3):
            got = runs(lengths, 32, threads)
            assert [i for r in got for i in r] == list(range(len(lengths)))  # every text once, in order
            assert all(len(r) <= 32 and len(r) * lengths[r[0]] <= max(MAX_BATCH_TOKENS, lengths[r[0]])
                       for r in got if r)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["dense", "hybrid"])
def test_same_top10_on_the_sample_corpus(sample_index, sample_corpus, encoders, mode):
    onnx, st = encoders
    idx = Index.open(sample_index)
    path = sample_corpus.parent / "sample-questions.jsonl"
    queries = [json.loads(line)["question"] for line in path.read_text().splitlines() if line.strip()]
    queries += ["parking lot", "rent increase", "heat pump warranty", "Ünïcödé", "total"]
    for q in queries:
        want = [h.page_id for h in Retriever(idx, st).search(q, k=10, mode=mode)]
        assert [h.page_id for h in Retriever(idx, onnx).search(q, k=10, mode=mode)] == want, q
        assert len(want) == 10


def _model_copy(tmp_path, pooling: dict | None = None):
    """The bundled MiniLM's folder, weights linked, optionally with another pooling config."""
    src = bundled_path(DEFAULT_MODEL)
    dest = tmp_path / "model"
    for p in sorted(Path(src).rglob("*")):
        target = dest / p.relative_to(src)
        if p.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(p)
    if pooling is not None:
        config = dest / "1_Pooling" / "config.json"
        data = {**json.loads(config.read_text()), **pooling}
        config.unlink()
        config.write_text(json.dumps(data))
    return dest


def test_a_model_that_cannot_be_exported_falls_back_with_a_note(tmp_path, caplog):
    folder = _model_copy(tmp_path, {"pooling_mode_mean_tokens": False, "pooling_mode_weightedmean_tokens": True})
    with caplog.at_level(logging.WARNING, logger="index.embed"):
        embedder = load_embedder(str(folder), tmp_path / "index")
    assert isinstance(embedder, Embedder) and embedder.name == str(folder)
    assert "runs on sentence-transformers" in caplog.text and "pooling" in caplog.text
    marker = cache_root() / model_key(folder) / UNSUPPORTED_FILE
    assert "pooling" in marker.read_text()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="index.embed"):
        again = load_embedder(str(folder), tmp_path / "index")  # the marker answers: no second attempt
    assert isinstance(again, Embedder) and "pooling" in caplog.text


@pytest.mark.slow
def test_export_goes_to_the_index_folder_when_the_cache_is_not_writable(tmp_path, monkeypatch):
    folder = _model_copy(tmp_path)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    embedder = load_embedder(str(folder), tmp_path / "index")
    assert isinstance(embedder, OnnxEmbedder)
    assert embedder.onnx_dir == tmp_path / "index" / "onnx" / model_key(folder)
    again = load_embedder(str(folder), tmp_path / "index")  # found there next time
    assert isinstance(again, OnnxEmbedder) and again.onnx_dir == embedder.onnx_dir
    assert again.encode(["hello"]).shape == (1, 384)


@pytest.mark.slow
def test_int8_passages_stay_within_the_threshold(encoders):
    """Builds embed passages with the int8 graph (README, "Performance": retrieval on the eval sets held).
    Fails if int8 vectors drift from fp32 past cosine 0.99 (mean 0.995: MiniLM gives ~0.998 here), if a
    passage's vector depends on its batch mates, or if queries stop being fp32."""
    onnx, _ = encoders
    int8 = load_embedder(DEFAULT_MODEL, passages=True)
    assert isinstance(int8, OnnxEmbedder) and int8.precision == "int8" and onnx.precision == "fp32"
    texts = [t for t in varied_texts() if len(t.split()) >= 3]  # passages: a title and some words
    got, want = int8.encode(texts), onnx.encode(texts)
    cosine = (got * want).sum(axis=1)
    assert cosine.min() >= MIN_INT8_COSINE and cosine.mean() >= 0.995
    assert cosine.mean() < 0.99999  # it is the int8 graph that ran
    alone = np.stack([int8.encode([t], threads=1)[0] for t in texts[:20]])
    assert (alone * got[:20]).sum(axis=1).min() >= 0.99999
    assert np.allclose(int8.encode_query(texts[0]), onnx.encode_query(texts[0]), atol=1e-6)


@pytest.mark.slow
def test_int8_graph_unfaithful_or_unwanted_means_fp32_passages(encoders, tmp_path, monkeypatch, caplog):
    onnx, _ = encoders
    export = tmp_path / "export"
    export.mkdir()
    for p in onnx.onnx_dir.iterdir():  # the export, hard-linked: onnx refuses symbolic links to weights
        if p.name in (ONNX_FILE, ONNX_FILE + ".data", "pipeline.json"):
            os.link(p, export / p.name)
    monkeypatch.setenv("PAGERAG_EMBED_INT8", "0")
    assert load_embedder(DEFAULT_MODEL, passages=True).precision == "fp32"
    monkeypatch.setattr(onnx_export, "MIN_INT8_COSINE", 1.0)  # no int8 graph reproduces fp32 exactly
    strict = OnnxEmbedder(DEFAULT_MODEL, onnx.folder, export, int8=True)
    with caplog.at_level(logging.WARNING, logger="index.onnx_export"):
        assert strict.precision == "fp32"
    assert "embeds passages in fp32" in caplog.text and (export / INT8_UNSUPPORTED_FILE).is_file()
    assert not (export / INT8_FILE).exists() and not list(export.glob(".*.tmp"))
    assert np.allclose(strict.encode(["a receipt total"]), onnx.encode(["a receipt total"]), atol=1e-6)
