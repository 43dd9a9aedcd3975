"""Every command documents itself, and the CLI starts without importing anything heavy."""
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from cli.main import cli


def commands(group=cli, prefix=()):
    for name, cmd in group.commands.items():
        yield (*prefix, name)
        if isinstance(cmd, click.Group):
            yield from commands(cmd, (*prefix, name))


@pytest.mark.parametrize("path", sorted(commands()), ids=" ".join)
def test_every_command_has_help(path):
    result = CliRunner().invoke(cli, [*path, "--help"], catch_exceptions=False)
    assert result.exit_code == 0 and result.output.startswith("Usage: ")
    assert len(result.output.splitlines()) > 3


def test_import_of_the_cli_loads_no_heavy_library():
    code = ("import sys, cli.main; heavy = {'torch', 'transformers', 'faiss', 'sentence_transformers', 'fitz',"
            " 'pymupdf', 'PIL', 'numpy', 'rapidocr_onnxruntime'} & set(sys.modules); print(sorted(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
