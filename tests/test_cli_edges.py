"""Damaged or odd index metadata and odd paths: clear errors, never a traceback."""
import shutil
import sqlite3

import pytest
from click.testing import CliRunner

from cli.main import cli

pytestmark = pytest.mark.slow


def test_embed_dim_disagreeing_with_the_vectors_is_damage(tmp_path, sample_index):
    idx = tmp_path / "idx"
    shutil.copytree(sample_index, idx)
    with sqlite3.connect(idx / "index.db") as db:
        db.execute("UPDATE meta SET value = '512' WHERE key = 'embed_dim'")
    (idx / "vectors.faiss").unlink()  # rebuilt from SQLite, where the vectors are 384-d
    result = CliRunner().invoke(cli, ["search", "rent increase", "--index", str(idx)])
    assert result.exit_code == 1 and "512 dimensions" in result.output and "damaged" in result.output, result.output
    assert not isinstance(result.exception, ValueError)
