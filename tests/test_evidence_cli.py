"""Evidence boxes from `ask` and `chat`: PNGs of the cited pages, boxes in --json (real index, real HTTP server)."""
import json

import pytest
from PIL import Image
from test_ask import MINUTES, Q_PARKING, index_copy, invoke, scripted  # noqa: F401  (index_copy: a fixture)

from rag.highlight import colour, draw

pytestmark = pytest.mark.slow
ANSWER = "The board voted to resurface the lot [1]. It will cost $27,500 [1]."


def ask_scripted(index, *args):
    from openai_server import OpenAIServer

    with OpenAIServer(scripted([ANSWER])) as server:
        return invoke("ask", Q_PARKING, "--backend", "openai", "--base-url", server.url, "-m", "pagerag-test",
                      "-k", 2, "--index", index, *args)


def test_ask_json_carries_the_boxes_of_each_citation(index_copy, sample_corpus):
    data = json.loads(ask_scripted(index_copy, "--json").output)
    first = data["evidence"][0]
    assert first["n"] == 1 and first["path"] == str(sample_corpus / MINUTES) and first["page"] == 2
    texts = " ".join(r["text"] for r in first["regions"])
    assert "27,500" in texts
    for r in first["regions"]:
        x0, y0, x1, y1 = r["pixels"]
        assert 0 <= x0 < x1 <= first["width"] and 0 <= y0 < y1 <= first["height"]


def test_ask_saves_the_cited_page_with_its_words_boxed_in_the_citation_colour(index_copy, tmp_path):
    out = tmp_path / "evidence"
    result = ask_scripted(index_copy, "--save-evidence", out, "--json")
    data = json.loads(result.stdout)
    [png] = sorted(out.iterdir())
    assert png.name == "1-minutes-2024-q1-p2.png"
    box = data["evidence"][0]["regions"][0]["pixels"]
    image = Image.open(png)
    assert image.size == (data["evidence"][0]["width"], data["evidence"][0]["height"])
    assert image.getpixel((box[0] - 3, (box[1] + box[3]) // 2)) == colour(1)


def test_without_a_model_the_evidence_is_still_saved(index_copy, tmp_path):
    out = tmp_path / "evidence"
    result = invoke("ask", Q_PARKING, "-m", tmp_path / "no-such-model", "-k", 2, "--save-evidence", out,
                    "--index", index_copy)
    assert result.exit_code == 4
    assert sorted(p.name for p in out.iterdir())[0] == "1-minutes-2024-q1-p2.png"


def show(index, *args):
    return invoke_lenient("show", *args, "--index", index)


def invoke_lenient(*args, input=None):
    from click.testing import CliRunner

    from cli.main import cli

    return CliRunner().invoke(cli, [str(a) for a in args], input=input)


def one_line_error(result, *fragments):
    assert result.exit_code in (1, 2) and isinstance(result.exception, SystemExit), result.output  # 2: usage
    assert "Traceback" not in result.output and result.output.count("Error: ") == 1, result.output
    assert all(f in result.output for f in fragments), result.output


def test_show_output_targets_are_checked_or_written_as_png(pdf_index, tmp_path):
    index, (budget, _) = pdf_index
    no_ext = tmp_path / "noext"
    assert show(index, budget, "-o", no_ext).exit_code == 0 and Image.open(no_ext).format == "PNG"
    assert show(index, budget, "-o", "/dev/null").exit_code == 0
    one_line_error(show(index, budget, "-o", tmp_path / "nonexist" / "x.png"), "does not exist")
    one_line_error(show(index, budget, "-o", tmp_path / "x.jpg"), "name a .png file")
    one_line_error(show(index, budget, "-o", tmp_path), "is a folder")
    one_line_error(show(index, budget, "-o", "-", "--json"), "choose one")
    piped = invoke_lenient("show", budget, "-o", "-", "--index", index)
    assert piped.exit_code == 0 and piped.stdout_bytes.startswith(b"\x89PNG")


def test_show_prints_the_boxes_of_the_png_it_wrote(pdf_index, tmp_path):
    index, (budget, _) = pdf_index
    full = json.loads(show(index, budget, "--highlight", "27,500", "-o", tmp_path / "a.png", "--json").output)
    half = full["width"] // 2
    small = json.loads(show(index, budget, "--highlight", "27,500", "-o", tmp_path / "b.png", "--width", half,
                            "--json").output)
    [region] = small["regions"][:1]
    assert small["png_width"] == half == Image.open(tmp_path / "b.png").width
    assert abs(region["png_pixels"][0] - region["pixels"][0] / 2) <= 1
    text = show(index, budget, "--highlight", "27,500", "-o", tmp_path / "c.png", "--width", half).output
    assert f"at {region['png_pixels']} px of the PNG" in text


def test_show_falls_back_to_a_file_name_only_when_no_folder_is_given(pdf_index, tmp_path):
    index, (budget, _) = pdf_index
    elsewhere = tmp_path / "elsewhere" / budget.name
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(budget.read_bytes())
    one_line_error(show(index, elsewhere, "-o", tmp_path / "x.png"), "not in the index")
    assert not (tmp_path / "x.png").exists()
    assert show(index, budget.name, "-o", tmp_path / "y.png").exit_code == 0


def test_a_file_name_two_indexed_files_share_lists_them(tmp_path):
    from fault_kit import text_pdf

    from index.builder import BuildOptions, build

    docs = [text_pdf(tmp_path / d / "minutes.pdf", [f"Minutes of {d}"]) for d in ("jan", "feb")]
    build(tmp_path / "index", [tmp_path / "jan", tmp_path / "feb"], BuildOptions(ocr="none"))
    one_line_error(show(tmp_path / "index", "minutes.pdf"), "several indexed files", str(docs[0]), str(docs[1]))


def test_chat_page_save_errors_are_one_line_and_chat_goes_on(pdf_index, tmp_path):
    index, _ = pdf_index
    good = tmp_path / "good.png"
    lines = ["budget approved", f"/page 1 --save {tmp_path / 'nonexist' / 'x.png'}", f"/page 1 --save {tmp_path}",
             f"/page 1 --save {tmp_path / 'p1.jpg'}", "/page 1 --save", f"/page 1 --save '{good}'", "/exit"]
    result = invoke_lenient("chat", "-m", tmp_path / "no-model", "-k", 1, "--index", index,
                            input="\n".join(lines) + "\n")
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    assert "does not exist" in result.output and "is a folder" in result.output
    assert "name a .png file" in result.output and "Usage: /page N --save FILE.png" in result.output
    assert Image.open(good).format == "PNG"


def test_chat_names_a_command_it_does_not_know_and_lists_those_it_does(pdf_index, tmp_path):
    index, _ = pdf_index
    result = invoke_lenient("chat", "-m", tmp_path / "no-model", "--index", index, input="/sauces\n/help\n/exit\n")
    assert result.exit_code == 0 and result.output.count("Unknown command") == 1
    assert "Unknown command /sauces.\nCommands: /sources" in result.output
    assert result.output.count("Commands: /sources") == 3  # at the start, after /sauces, for /help


def test_save_evidence_into_a_bad_folder_is_said_before_answering(pdf_index, tmp_path):
    index, _ = pdf_index
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    for folder, said in ((a_file, "is a file"), (a_file / "sub", "cannot make the folder"),
                         (tmp_path / "new" / "parents", None)):
        result = invoke_lenient("ask", "budget", "-m", tmp_path / "no-model", "--save-evidence", folder,
                                "--index", index)
        if said is None:  # missing parents are made
            assert result.exit_code == 4 and "1-budget-p1.png" in {p.name for p in folder.iterdir()}
            continue
        one_line_error(result, said)
        assert "Evidence found" not in result.output  # said before any answer


def test_paths_with_control_characters_print_on_one_line(tmp_path):
    from fault_kit import text_pdf

    from cli.common import shown
    from index.builder import BuildOptions, build

    odd = text_pdf(tmp_path / "docs" / "bud\nget.pdf", ["The annual budget of $27,500 was approved."])
    build(tmp_path / "index", [tmp_path / "docs"], BuildOptions(ocr="none"))
    result = invoke_lenient("ask", "budget", "-m", tmp_path / "no-model", "--index", tmp_path / "index")
    assert shown(odd) == str(odd).replace("\n", "\\n")
    assert f"[1] {shown(odd)}, page 1" in result.output
    found = invoke_lenient("search", "budget", "--index", tmp_path / "index").output
    assert f"1. {shown(odd)}  page 1" in found


def test_evidence_labels_sit_in_the_margin_not_over_the_words_before_the_box():
    from index.words import Word
    from rag.locate import locate

    words = [Word(t, x0, 0.5, x0 + 0.1, 0.52, 0.9, 0) for t, x0 in (("total", 0.2), ("due", 0.31), ("27,500", 0.42))]
    [region] = locate(words, "27,500", kind="query")
    img = draw(Image.new("RGB", (1000, 1000), "white"), [([region], 1)])
    assert all(img.getpixel((x, 510)) == (255, 255, 255) for x in range(330, 405))  # over "due": untouched
    assert any(img.getpixel((x, 510)) != (255, 255, 255) for x in range(0, 60))  # the [1] in the margin


def test_show_of_a_page_whose_file_is_gone_says_to_prune(pdf_index, tmp_path):
    index, (budget, _) = pdf_index
    budget.unlink()
    one_line_error(show(index, budget, "-o", tmp_path / "x.png"), "is gone or was moved", "--prune")


def test_chat_commands_in_capitals_work_and_stray_arguments_are_noted(pdf_index, tmp_path):
    index, _ = pdf_index
    result = invoke_lenient("chat", "-m", tmp_path / "no-model", "--index", index, input="/NEW now\n/Exit\nbudget\n")
    assert result.exit_code == 0 and "Unknown command" not in result.output
    assert "New conversation." in result.output and "Note: /new takes no argument; now was ignored." in result.output
    assert "budget" not in result.output.split("New conversation.", 1)[1]  # /Exit left before the question
