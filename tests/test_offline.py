"""Nothing reaches the network unless asked: a missing embedding model fails at once, saying how to get it."""
import os
import shutil
import sqlite3
import subprocess
import sys

import pytest

from index.embed import load_embedder
from index.errors import EmbedderUnavailable


def _cli(*args, cwd):
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=300)


def test_unknown_model_name_is_refused_before_any_download():
    with pytest.raises(EmbedderUnavailable, match="hf download someorg/nonexistent-model"):
        load_embedder("someorg/nonexistent-model")


def test_build_with_unknown_model_never_asks_the_hub(tmp_path, sample_corpus):
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(next(sample_corpus.rglob("*.jpg")), docs)
    result = _cli("index", "build", str(docs), "--index", str(tmp_path / "idx"),
                  "--embed-model", "someorg/nonexistent-model", cwd=os.environ.get("PYTHONPATH", "."))
    assert result.returncode == 1, result.stderr
    assert "hf download someorg/nonexistent-model" in result.stderr
    assert "huggingface.co" not in result.stderr and "Retrying" not in result.stderr


@pytest.mark.slow
def test_search_on_index_whose_model_is_gone(tmp_path, sample_index):
    idx = tmp_path / "idx"
    shutil.copytree(sample_index, idx)
    with sqlite3.connect(idx / "index.db") as db:
        db.execute("UPDATE meta SET value = 'someorg/gone' WHERE key = 'embed_model'")
    result = _cli("search", "rent increase", "--index", str(idx), cwd=os.environ.get("PYTHONPATH", "."))
    assert result.returncode == 1 and "hf download someorg/gone" in result.stderr, result.stderr
    assert "huggingface.co" not in result.stderr and "Retrying" not in result.stderr
