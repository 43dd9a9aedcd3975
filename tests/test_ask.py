"""Grounded answers end to end: real retrieval, the real tiny Mllama/LLaVA through the real
processor and generate, the OpenAI wire format over a real socket, persistence in SQLite."""
import json

import pytest
from click.testing import CliRunner

from cli.main import cli
from index.store import Index
from rag.assistant import AskSettings, Assistant, build_messages
from rag.backends import Backend, GenerationOptions, get_backend
from rag.conversations import ConversationStore

pytestmark = pytest.mark.slow
Q_PARKING = "What did the library board decide about the parking lot?"
MINUTES = "reports/minutes-2024-q1.tif"
SHORT = GenerationOptions(max_new_tokens=8)


@pytest.fixture
def index_copy(tmp_path, sample_index):
    """A private copy of the sample index, so conversations written by one test stay there."""
    import shutil

    dest = tmp_path / "index"
    shutil.copytree(sample_index, dest, ignore=shutil.ignore_patterns("conversations.db*", "write.lock"))
    return dest


@pytest.fixture(scope="module")
def mllama(tiny_folders):
    backend = get_backend("transformers")(str(tiny_folders["mllama"]))
    backend.load()
    return backend


def scripted(replies):
    """A Backend replying with the given texts in order, word by word."""
    class _Scripted(Backend):
        name = "scripted"

        def __init__(self):
            super().__init__("scripted")
            self.calls = 0

        def stream(self, messages, images, options):
            reply = replies[self.calls]
            self.calls += 1
            words = reply.split(" ")
            yield words[0]
            for w in words[1:]:
                yield " " + w

    return _Scripted()


def invoke(*args, input=None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input, catch_exceptions=False)


def test_ask_prompt_shows_page_image_first_then_labelled_evidence(index_copy, sample_corpus, mllama, one_thread):
    assistant = Assistant(Index.open(index_copy), mllama, ConversationStore(index_copy),
                          AskSettings(k=3, generation=SHORT))
    answer = assistant.ask(Q_PARKING)
    assert not answer.abstained and answer.model_error is None and answer.text
    assert [(s.path, s.page, s.image) for s in answer.sources][0] == (str(sample_corpus / MINUTES), 2, True)
    assert sum(s.image for s in answer.sources) == 1 and len(answer.sources) == 3

    prompt = mllama.prompt_text(build_messages([], _evidence(assistant, answer), Q_PARKING))
    head = "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n<|image|>"
    assert prompt.startswith(head) and prompt.count("<|image|>") == 1
    assert "Cite the pages you used as [1], [2]" in prompt
    assert "[1] minutes-2024-q1.tif, page 2 (image 1 above):\nLINDEN PARK COMMUNITY LIBRARY" in prompt
    assert "[2] " in prompt and "[3] " in prompt and "[4] " not in prompt
    assert prompt.rstrip().endswith(f"Question: {Q_PARKING}<|eot_id|><|start_header_id|>assistant<|end_header_id|>")
    tok = mllama._processor.tokenizer
    assert mllama.last_input_ids.count(tok.convert_tokens_to_ids("<|begin_of_text|>")) == 1
    assert mllama.last_input_ids.count(tok.convert_tokens_to_ids("<|image|>")) == 1

    conv = ConversationStore(index_copy).get(answer.conversation_id)
    (turn,) = conv.turns
    assert (turn.question, turn.answer, turn.model) == (Q_PARKING, answer.text, mllama.model)
    assert turn.sources[0] == {"n": 1, "path": str(sample_corpus / MINUTES), "page": 2, "image": True,
                               "score": answer.sources[0].score}
    assert turn.generation_seconds > 0 and turn.retrieval_seconds > 0


def _evidence(assistant, answer):
    from rag.evidence import gather
    from rag.retrieve import Hit

    hits = [Hit(s.path, s.page, s.score, "", s.title, 0) for s in answer.sources]
    return gather(assistant.index, hits, images=1)


def test_three_turn_chat_resends_history_and_folds_follow_ups(index_copy, sample_corpus, mllama, one_thread):
    store = ConversationStore(index_copy)
    assistant = Assistant(Index.open(index_copy), mllama, store, AskSettings(k=2, generation=SHORT))
    first = assistant.ask(Q_PARKING)
    second = assistant.ask("Who was absent from that meeting?", first.conversation_id)
    third = assistant.ask("Who was elected treasurer in March?", first.conversation_id)
    assert first.conversation_id == second.conversation_id == third.conversation_id
    assert second.query == f"{Q_PARKING} Who was absent from that meeting?"
    assert (second.sources[0].path, second.sources[0].page) == (str(sample_corpus / MINUTES), 2)
    assert (third.sources[0].path, third.sources[0].page) == (str(sample_corpus / MINUTES), 3)

    prompt = mllama._processor.tokenizer.decode(mllama.last_input_ids)
    # image first, then the two earlier turns, then the evidence and the new question
    order = [prompt.index(x) for x in ("<|image|>", Q_PARKING, first.text, "Who was absent from that meeting?",
                                       second.text, "Pages:", "Question: Who was elected treasurer in March?")]
    assert order == sorted(order)
    assert prompt.count("<|image|>") == 1 and prompt.count("<|begin_of_text|>") == 1
    turns = store.get(first.conversation_id).turns
    assert [t.question for t in turns] == [Q_PARKING, "Who was absent from that meeting?",
                                           "Who was elected treasurer in March?"]
    assert [t.answer for t in turns] == [first.text, second.text, third.text]


def test_llava_sees_its_image_tokens_first(index_copy, tiny_folders, one_thread):
    llava = get_backend("transformers")(str(tiny_folders["llava"]))
    answer = Assistant(Index.open(index_copy), llava, ConversationStore(index_copy),
                       AskSettings(k=2, generation=SHORT)).ask(Q_PARKING)
    assert answer.text and answer.sources[0].image
    prompt = llava._processor.tokenizer.decode(llava.last_input_ids)
    assert prompt.startswith("<s><|user|>\n<image>") and "[1] minutes-2024-q1.tif, page 2" in prompt


def test_cli_ask_prints_answer_and_sources_and_json(index_copy, sample_corpus, tiny_folders, one_thread):
    result = invoke("ask", Q_PARKING, "-m", tiny_folders["mllama"], "-k", 2, "--max-new-tokens", 6,
                    "--index", index_copy)
    assert result.exit_code == 0
    answer_text, sources = result.output.split("\nSources:\n")
    assert answer_text.strip()
    assert sources.splitlines()[0].endswith(f"[1] {sample_corpus / MINUTES}, page 2 (image shown)")

    cont = invoke("ask", "Who was absent from that meeting?", "-c", "--json", "-m", tiny_folders["mllama"],
                  "-k", 2, "--max-new-tokens", 6, "--index", index_copy)
    data = json.loads(cont.output)
    assert data["turn"] == 2 and data["abstained"] is False and data["answer"]
    assert data["query"] == f"{Q_PARKING} Who was absent from that meeting?"
    assert data["sources"][0] | {"score": 0} == {"n": 1, "path": str(sample_corpus / MINUTES), "page": 2,
                                                  "title": "reports / minutes 2024 q1", "image": True, "score": 0}
    listing = invoke("conversations", "--index", index_copy)
    assert listing.output.startswith(data["conversation_id"]) and "2 turn(s)" in listing.output
    shown = invoke("conversations", "show", data["conversation_id"][:4], "--index", index_copy)
    assert f"Q: {Q_PARKING}" in shown.output and "Q: Who was absent from that meeting?" in shown.output


def test_conversations_print_titles_questions_and_answers_with_control_characters_escaped(index_copy):
    """A question typed with a terminal escape (or pasted with a carriage return) is stored as asked; the
    listing and `conversations show` print it escaped, so it cannot clear the screen or retitle the terminal."""
    from rag.conversations import Turn

    nasty = "Clear\x1b[2J it\x1b]0;owned\x07 now\rX\x9b1m?"
    store = ConversationStore(index_copy)
    cid = store.new(nasty)
    store.add_turn(cid, Turn(question=nasty, query=nasty, answer="Line one\x1b[31m red\nline two\tend"))
    listing = invoke("conversations", "--index", index_copy).output
    title = next(line for line in listing.splitlines() if line.startswith(cid))
    assert title.endswith("Clear\\x1b[2J it\\x1b]0;owned\\x07 now\\rX\\x9b1m?")
    shown = invoke("conversations", "show", cid, "--index", index_copy).output
    assert not any(ch in shown for ch in "\x1b\x07\r\x9b")
    assert "Q: Clear\\x1b[2J it" in shown and "A: Line one\\x1b[31m red\nline two\tend" in shown
    data = json.loads(invoke("conversations", "--json", "--index", index_copy).output)
    assert data[0]["title"] == nasty  # JSON carries the text as stored (escaped by JSON itself)


def test_cli_chat_three_turns_with_commands(index_copy, sample_corpus, tiny_folders, tmp_path, one_thread):
    lines = [Q_PARKING, "/sources", "Who was absent from that meeting?", "/page 1",
             f"/page 1 --save {tmp_path / 'p.png'}", "Who was elected treasurer in March?", "/new", "/exit"]
    result = invoke("chat", "-m", tiny_folders["mllama"], "-k", 2, "--max-new-tokens", 6, "--index", index_copy,
                    input="\n".join(lines) + "\n")
    assert result.exit_code == 0
    assert result.output.count("Sources:") == 4  # three answers and /sources
    assert "Absent: D. Sorensen" in result.output  # /page 1 printed the February minutes' text
    from PIL import Image

    assert Image.open(tmp_path / "p.png").size[0] > 500
    (conv, n), = ConversationStore(index_copy).list()
    assert n == 3 and conv.title == Q_PARKING


def test_chat_ends_on_ctrl_d(index_copy, tiny_folders):
    result = invoke("chat", "-m", tiny_folders["mllama"], "--index", index_copy, input="")
    assert result.exit_code == 0 and ConversationStore(index_copy).list() == []


def test_openai_backend_through_cli_over_a_real_socket(index_copy, sample_corpus, tiny_folders, one_thread):
    from openai_server import OpenAIServer

    served = get_backend("transformers")(str(tiny_folders["mllama"]))
    with OpenAIServer(served, models=["tiny-mllama"]) as server:
        result = invoke("ask", Q_PARKING, "--backend", "openai", "--base-url", server.url, "-m", "tiny-mllama",
                        "-k", 2, "--max-new-tokens", 6, "--json", "--index", index_copy)
        data = json.loads(result.output)
        (request,) = server.chat_requests()
    assert result.exit_code == 0 and data["backend"] == "openai" and data["model"] == "tiny-mllama"
    content = request.body["messages"][0]["content"]
    assert content[0]["type"] == "image_url" and content[0]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    assert "[1] minutes-2024-q1.tif, page 2 (image 1 above)" in content[1]["text"]
    assert request.body["stream"] is True and request.body["max_tokens"] == 6
    assert data["answer"] == served.generate(*_served_call(server), GenerationOptions(max_new_tokens=6)).strip()


def _served_call(server):
    call = server.calls[-1]
    return call.messages, call.images


def test_invalid_citations_are_removed_and_reported(index_copy):
    from openai_server import OpenAIServer

    model = scripted(["The board voted to resurface the lot [1] for $27,500 [1, 7]; see also [9]. Agreed [2,2,2]."])
    with OpenAIServer(model) as server:
        result = invoke("ask", Q_PARKING, "--backend", "openai", "--base-url", server.url, "-m", "pagerag-test", "-k", 3,
                        "--index", index_copy)
    assert result.exit_code == 0
    assert "The board voted to resurface the lot [1] for $27,500 [1]; see also. Agreed [2]." in result.output
    assert "Removed citation(s) to pages the model was not shown: [7], [9]" in result.output
    conv = ConversationStore(index_copy).get(ConversationStore(index_copy).last_id())
    assert conv.turns[0].removed_citations == [7, 9]


@pytest.mark.parametrize("reply", ["   ", "[9]"])
def test_an_empty_answer_is_an_error_not_a_saved_turn(index_copy, reply):
    from openai_server import OpenAIServer

    with OpenAIServer(scripted([reply])) as server:
        result = invoke("ask", Q_PARKING, "--backend", "openai", "--base-url", server.url, "-m", "pagerag-test", "-k", 3,
                        "--index", index_copy)
    assert result.exit_code == 4
    assert "answered with no text" in result.output
    assert ConversationStore(index_copy).last_id() is None


def test_abstains_without_calling_the_model(index_copy, sample_corpus):
    from openai_server import OpenAIServer

    model = scripted(["should never be said"])
    with OpenAIServer(model) as server:
        result = invoke("ask", "How do I bake banana bread?", "--backend", "openai", "--base-url", server.url,
                        "--json", "--index", index_copy)
    data = json.loads(result.output)
    assert result.exit_code == 0 and data["abstained"] is True and model.calls == 0
    assert "do not seem to contain this: I searched 15 page(s) for 'How do I bake banana bread?'" in data["answer"]
    with OpenAIServer(model) as server:  # within one folder: the pages searched are that folder's
        within = invoke("ask", "How do I bake banana bread?", "--backend", "openai", "--base-url", server.url,
                        "--in", sample_corpus / "slides", "--json", "--index", index_copy)
    import pymupdf

    slides = sum(len(pymupdf.open(p)) for p in (sample_corpus / "slides").iterdir())
    assert f"I searched {slides} page(s) for" in json.loads(within.output)["answer"] and model.calls == 0
    lowered = invoke("ask", "How do I bake banana bread?", "--backend", "openai", "--base-url", "http://127.0.0.1:9/v1",
                     "--min-score", "-1", "--index", index_copy)
    assert lowered.exit_code == 4  # with the threshold off, the model is called (and here, unreachable)


def test_missing_model_shows_evidence_and_exits_4(index_copy, sample_corpus, tmp_path):
    result = invoke("ask", Q_PARKING, "-m", tmp_path / "no-such-model", "--index", index_copy)
    assert result.exit_code == 4
    assert "No answer: the model could not be used." in result.output
    # the evidence is listed, but no page was rendered for a model that cannot see it, nor claimed shown
    assert f"[1] {sample_corpus / MINUTES}, page 2\n" in result.output and "(image shown)" not in result.output
    assert "Evidence found:" in result.output and "Traceback" not in result.output
    assert ConversationStore(index_copy).list() == []  # nothing persisted for an unanswered question


def test_server_down_is_a_clear_message(index_copy):
    from openai_server import closed_port_url

    result = invoke("ask", Q_PARKING, "--backend", "openai", "--base-url", closed_port_url(), "--index", index_copy)
    assert result.exit_code == 4 and "cannot reach the OpenAI-compatible server" in result.output


def test_continue_without_a_conversation_is_an_error(index_copy):
    result = CliRunner().invoke(cli, ["ask", "anything", "-c", "--index", str(index_copy)])
    assert result.exit_code == 1 and "no conversation to continue yet" in result.output
