"""Every command documents itself, and the CLI starts without importing anything heavy."""
import os
import shutil
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from cli.main import cli


def commands(group=cli, prefix=()):
    for name in group.list_commands(None):
        cmd = group.get_command(None, name)
        yield (*prefix, name)
        if isinstance(cmd, click.Group):
            yield from commands(cmd, (*prefix, name))


@pytest.mark.parametrize("path", sorted(commands()), ids=" ".join)
def test_every_command_has_help(path):
    result = CliRunner().invoke(cli, [*path, "--help"], catch_exceptions=False)
    assert result.exit_code == 0 and result.output.startswith("Usage: ")
    assert len(result.output.splitlines()) > 3


@pytest.mark.parametrize("group", [(), ("index",), ("conversations",)], ids=lambda g: " ".join(("pagerag", *g)))
def test_command_lists_show_each_summary_whole(group):
    """click cut a summary to what fit an 80-column line: 'chat  Talk with your documents: a conversation
    grounded on the...'."""
    listed = CliRunner().invoke(cli, [*group, "--help"]).output.split("Commands:")[1]
    assert "..." not in listed
    if not group:
        assert "a conversation grounded on the\n" in listed and "indexed pages." in listed


def test_import_of_the_cli_loads_no_heavy_library():
    code = ("import sys, cli.main; heavy = {'torch', 'transformers', 'faiss', 'sentence_transformers', 'fitz',"
            " 'pymupdf', 'PIL', 'numpy', 'rapidocr_onnxruntime', 'openai'} & set(sys.modules); print(sorted(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# Runs a command as `pagerag` would, then reports which heavy libraries the process imported.
PROBE = """
import atexit, sys
atexit.register(lambda: print("HEAVY=" + ",".join(sorted({"torch", "transformers", "sentence_transformers"}
                                                          & set(sys.modules))), file=sys.stderr))
from cli.main import cli
cli(sys.argv[1:], prog_name="pagerag")
"""
QUERY_COMMANDS = {  # command -> exit code: `ask` without a model prints the evidence and exits 4
    ("--help",): 0,
    ("search", "capital budget 2023"): 0,
    ("search", "--mode", "dense", "parking lot", "--json"): 0,
    ("ask", "What was the capital budget in 2023?"): 4,
    ("index", "status"): 0,
    ("conversations",): 0,
}


@pytest.mark.slow
@pytest.mark.parametrize("args", list(QUERY_COMMANDS), ids=" ".join)
def test_query_commands_run_without_torch(sample_index, tmp_path, args):
    """The query path encodes with the ONNX export of the index's model: torch is never imported."""
    index = tmp_path / "index"
    shutil.copytree(sample_index, index)  # `ask` writes a conversation
    env = {**os.environ, "PAGERAG_INDEX": str(index), "HF_HUB_CACHE": str(tmp_path / "no-models")}
    out = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == QUERY_COMMANDS[args], out.stderr[-2000:]
    assert out.stderr.strip().splitlines()[-1] == "HEAVY=", out.stderr[-2000:]
    if args[0] in ("search", "ask"):
        assert "harbor-city-water-annual-report-2023.pdf" in out.stdout or "minutes-2024-q1" in out.stdout


def test_pymupdf_loads_without_its_layout_models():
    """PyMuPDF 2 would import pymupdf.layout (ONNX models, ~3 s) and pymupdf4llm; `index` keeps them out."""
    code = ("import sys, index, pymupdf; loaded = {m for m, v in sys.modules.items() if v is not None};"
            " print(sorted({'pymupdf.layout', 'pymupdf4llm', 'onnxruntime'} & loaded))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
