"""The paths a build is given: --prune drops only files gone under them, unreadable folders and links
to folders, the index folder inside (or as) the corpus, locations that cannot be looked at, a device.
Real files, links and subprocesses.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fault_kit import text_pdf

from index.builder import BuildOptions, build
from index.maintenance import verify
from index.store import Index

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
TEXT = BuildOptions(ocr="none", jobs=1)


def _docs(folder) -> list[str]:
    idx = Index.open(folder)
    try:
        return sorted(Path(d["path"]).name for d in idx.documents())
    finally:
        idx.close()


def test_prune_drops_only_gone_files_under_the_paths_given(tmp_path):
    for name in ("a/one.pdf", "a/two.pdf", "b/three.pdf"):
        text_pdf(tmp_path / name, [f"Document {name}: orchard irrigation plan for the north field."])
    idx = tmp_path / "idx"
    build(idx, [tmp_path / "a", tmp_path / "b"], TEXT)
    (tmp_path / "a" / "two.pdf").unlink()
    (tmp_path / "a" / "two.pdf").mkdir()  # a file replaced by a folder of the same name is gone too
    (tmp_path / "b" / "three.pdf").unlink()
    report = build(idx, [tmp_path / "a"], BuildOptions(ocr="none", jobs=1, prune=True))
    assert report.pruned == 1
    assert _docs(idx) == ["one.pdf", "three.pdf"]  # b was not named: its document stays (an unmounted disk?)
    assert verify(idx).ok


@pytest.mark.skipif(os.geteuid() == 0 and not Path("/usr/bin/setpriv").exists(), reason="needs setpriv as root")
def test_prune_keeps_files_it_cannot_check(tmp_path):
    """A folder made unreadable is not a deletion: its documents stay, the build goes on (not 'Permission denied')."""
    text_pdf(tmp_path / "c" / "locked" / "inner" / "kept.pdf", ["Ferry timetable: departures at 07:15 daily."])
    text_pdf(tmp_path / "c" / "open.pdf", ["Bakery order: twelve loaves of rye bread."])
    idx = tmp_path / "idx"
    build(idx, [tmp_path / "c"], TEXT)
    (tmp_path / "c" / "new.pdf").write_bytes((tmp_path / "c" / "open.pdf").read_bytes())
    (tmp_path / "c" / "locked").chmod(0)
    as_user = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"] if os.geteuid() == 0 else []
    try:
        run = subprocess.run([*as_user, sys.executable, "-m", "cli", "index", "build", str(tmp_path / "c"),
                              "--index", str(idx), "--ocr", "none", "-j", "1", "--prune"],
                             env=ENV, capture_output=True, text=True, timeout=300)
    finally:
        (tmp_path / "c" / "locked").chmod(0o755)
    assert run.returncode == 3, run.stderr  # done; the unreadable folder is a recorded error
    assert "cannot read this folder" in run.stderr and "Traceback" not in run.stderr
    assert _docs(idx) == ["kept.pdf", "new.pdf", "open.pdf"]


def test_links_to_folders_are_followed_once_and_index_folders_left_out(tmp_path):
    text_pdf(tmp_path / "elsewhere" / "linked.pdf", ["Water authority budget for the year."])
    text_pdf(tmp_path / "c" / "here.pdf", ["Library parking decision of the board."])
    os.symlink(tmp_path / "elsewhere", tmp_path / "c" / "shortcut")
    os.symlink(".", tmp_path / "c" / "elsewhere-up")  # a loop back to the corpus
    idx = tmp_path / "c" / "my-index"  # the index inside the corpus it indexes
    report = build(idx, [tmp_path / "c"], TEXT)
    assert _docs(idx) == ["here.pdf", "linked.pdf"]
    assert [(Path(s.path).name, s.is_error) for s in report.skipped] == [("elsewhere-up", False)]
    assert "read once" in report.skipped[0].reason
    again = build(idx, [tmp_path / "c"], TEXT)  # its own files (index.db, write.lock, ...) are never walked
    assert again.unchanged == 2 and [Path(s.path).name for s in again.skipped] == ["elsewhere-up"]


def test_remove_and_within_take_a_path_as_written_before_its_links_resolved(tmp_path):
    """A link inside the corpus is indexed under its own name: removing the link (or searching within it)
    means the link's document, never its target's; a folder reached through a link is named through it."""
    from index.maintenance import remove_paths

    text_pdf(tmp_path / "elsewhere" / "linked.pdf", ["Water authority budget for the year."])
    text_pdf(tmp_path / "c" / "here.pdf", ["Library parking decision of the board."])
    os.symlink(tmp_path / "elsewhere", tmp_path / "c" / "shortcut")
    os.symlink("here.pdf", tmp_path / "c" / "alias.pdf")
    idx = tmp_path / "idx"
    build(idx, [tmp_path / "c"], TEXT)
    assert _docs(idx) == ["alias.pdf", "here.pdf", "linked.pdf"]
    index = Index.open(idx)
    assert len(index.documents_under([tmp_path / "c" / "shortcut"])) == 1
    assert len(index.documents_under([tmp_path / "c" / "alias.pdf"])) == 1
    index.close()
    [removed] = remove_paths(idx, [tmp_path / "c" / "alias.pdf"])
    assert [Path(p).name for p, _ in removed.documents] == ["alias.pdf"]
    [removed] = remove_paths(idx, [tmp_path / "c" / "shortcut"])
    assert [Path(p).name for p, _ in removed.documents] == ["linked.pdf"]
    assert _docs(idx) == ["here.pdf"] and verify(idx).ok


def test_building_the_index_folder_itself_is_refused_before_anything_is_written(tmp_path):
    from index.errors import BadArgument

    text_pdf(tmp_path / "c" / "a.pdf", ["Orchard irrigation plan."])
    with pytest.raises(BadArgument, match="is the index folder or lies inside it"):
        build(tmp_path / "c", [tmp_path / "c"], TEXT)
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["a.pdf"]


def test_index_locations_that_cannot_even_be_looked_at_are_one_line(tmp_path):
    """A name longer than the file system allows, or a path under a file: a usage error, not a traceback."""
    from click.testing import CliRunner

    from cli.main import cli
    from index.errors import IndexLocationError

    text_pdf(tmp_path / "c" / "a.pdf", ["Orchard irrigation plan."])
    too_long = tmp_path / ("L" * 300)
    for location in (too_long, tmp_path / "c" / "a.pdf" / "idx"):
        for args in (["index", "build", str(tmp_path / "c")], ["index", "status"], ["search", "orchard"]):
            result = CliRunner().invoke(cli, [*args, "--index", str(location)])
            assert result.exit_code == 2, result.output
            assert "Traceback" not in result.output and "--index" in result.output
    with pytest.raises(IndexLocationError, match="File name too long"):
        Index.open(too_long)


def test_a_device_named_as_a_path_is_a_file_not_a_folder(tmp_path):
    report = build(tmp_path / "idx", [Path("/dev/null")], TEXT)
    assert [(s.path, s.reason) for s in report.skipped] == [("/dev/null", "unsupported file type 'null'")]
