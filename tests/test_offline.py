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


PROBE = """
import sys
from index.embed_models import model_folder
from rag.backends.hf import TransformersBackend
model_folder("someorg/absent")  # imports huggingface_hub offline, as a search before an answer may
import huggingface_hub.constants as c
assert c.HF_HUB_OFFLINE, "offline by default"
TransformersBackend("org/model", allow_download=sys.argv[1] == "1")._hub_env()
print(c.HF_HUB_OFFLINE)
"""


@pytest.mark.parametrize("allow, offline", [("0", "True"), ("1", "False")])
def test_allow_download_undoes_the_offline_default(allow, offline):
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    out = subprocess.run([sys.executable, "-c", PROBE, allow], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == offline
