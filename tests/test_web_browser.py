"""The web app in a real browser: headless Debian chromium, driven over the DevTools protocol, through
search -> open a page -> ask (a real OpenAI-compatible HTTP server) -> click a citation -> the boxed page.

Screenshots go to the test's tmp dir (and to $PAGERAG_SCREENSHOTS, if set: how the README's are made).
"""
import contextlib
import os
import threading
from pathlib import Path

import pytest
from cdp import Chromium, find_chromium
from test_ask import MINUTES, index_copy, scripted  # noqa: F401  (index_copy: a fixture)

from cli.serve_cmd import bind
from cli.web.app import WebState, create_app
from index.store import Index
from rag.assistant import AskSettings
from rag.settings import ModelSettings

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(find_chromium() is None,
                                 reason="chromium is not installed (`apt-get install chromium`; make test does it)")]
QUESTION = "What did the library board decide about the parking lot?"
ANSWER = "The board voted 4-0 to resurface the rear parking lot in May [1], at a cost not to exceed $27,500 [1]."


@contextlib.contextmanager
def serving(state: WebState):
    """The app on a free loopback port in this process: its base URL."""
    import uvicorn

    state.warm()
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(create_app(state), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture
def served(index_copy):  # noqa: F811
    """The app answering with a real OpenAI-compatible server."""
    from openai_server import OpenAIServer

    with OpenAIServer(scripted([ANSWER])) as model:
        with serving(WebState(Index.open(index_copy), ModelSettings(backend="openai", base_url=model.url,
                                                                    model="pagerag-test"), AskSettings(k=3))) as url:
            yield url


def boxes_on_image(page) -> list[dict]:
    """The evidence boxes drawn over the page image, with the image's rectangle."""
    return page.eval("""(() => {
        const img = document.getElementById('page-image').getBoundingClientRect();
        return [...document.querySelectorAll('.box')].map(b => {
            const r = b.getBoundingClientRect();
            return {inside: r.left >= img.left - 4 && r.right <= img.right + 4 && r.top >= img.top - 4
                            && r.bottom <= img.bottom + 4, width: r.width, height: r.height, text: b.title};
        });
    })()""")


def test_search_open_ask_and_follow_a_citation_to_the_boxed_page(served, tmp_path):
    shots = []
    with Chromium(tmp_path, width=1280, height=900) as page:
        page.goto(served + "/search")
        page.type("form.search input[name=q]", "parking lot resurfacing")
        page.eval("document.querySelector('form.search').submit()")
        page.wait_for("document.querySelectorAll('ol.hits li').length > 0")
        page.loaded()
        assert page.eval("document.querySelector('ol.hits a.title').textContent") == Path(MINUTES).name
        assert page.eval("document.querySelector('.hit .thumb img').naturalWidth") == 220
        shots.append(page.screenshot(tmp_path / "web-search.png"))

        page.click("ol.hits a.title")
        page.wait_for("document.querySelectorAll('.box').length > 0")
        assert page.eval("document.getElementById('page-image').naturalWidth") > 500
        boxes = boxes_on_image(page)
        assert boxes and all(b["inside"] and b["width"] > 5 and b["height"] > 5 for b in boxes)
        assert any("parking" in b["text"].lower() for b in boxes)
        shots.append(page.screenshot(tmp_path / "web-page.png"))

        ask_in_chat(page, served, "document.querySelector('.turn .a a.cite')")
        answer = page.eval("document.querySelector('.turn .a').textContent")
        assert answer == ANSWER
        assert page.eval("location.search").startswith("?cid=")
        shots.append(page.screenshot(tmp_path / "web-chat.png"))

        page.click(".turn .a a.cite")
        page.wait_for("document.querySelector('.citation') && document.querySelectorAll('.box').length > 0")
        page.loaded()
        boxes = boxes_on_image(page)
        assert boxes and all(b["inside"] for b in boxes)
        assert any("27,500" in b["text"] for b in boxes)
        assert page.eval("getComputedStyle(document.querySelector('.box')).borderTopColor") == "rgb(0, 114, 178)"
        shots.append(page.screenshot(tmp_path / "web-cited-page.png"))

    target = os.environ.get("PAGERAG_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        from PIL import Image

        for shot in shots:  # 256 colours: a quarter of the bytes, for committing
            Image.open(shot).quantize(256, dither=Image.Dither.NONE).save(Path(target) / shot.name, optimize=True)


def ask_in_chat(page, url: str, answered: str) -> None:
    """Open the chat view, ask QUESTION, and wait until the JS condition `answered` holds."""
    page.goto(url + "/chat")
    page.type("#ask textarea", QUESTION)
    page.eval("document.getElementById('ask').requestSubmit()")
    page.wait_for(answered, timeout=60)
    page.loaded()


def test_without_a_model_the_chat_shows_the_evidence_says_how_to_get_one_and_opens_the_boxed_page(index_copy,  # noqa: F811
                                                                                                  tmp_path):
    state = WebState(Index.open(index_copy), ModelSettings(model="pagerag-test/not-downloaded"), AskSettings(k=3))
    with serving(state) as url, Chromium(tmp_path, width=1280, height=900) as page:
        ask_in_chat(page, url, "document.querySelector('.turn .a.error') && document.querySelector('ul.sources a')")
        said = page.eval("document.querySelector('.turn .a.error').textContent")
        assert said.startswith("No answer: the model could not be used.") and "-m" in said  # what to do
        assert "`" not in said and "hf download pagerag-test/not-downloaded" in page.eval(  # the command as code
            "[...document.querySelectorAll('.turn .a.error code')].map(c => c.textContent)")
        widths = page.eval("[...document.querySelectorAll('ul.sources a')].map(a => a.getBoundingClientRect().width)")
        assert len(widths) == 3 and max(widths) - min(widths) < 1  # the pages in a grid, not ragged by name length
        assert "Evidence found" in page.eval("document.querySelector('.turn .notice').textContent")
        assert page.eval("document.querySelectorAll('ul.sources a img').length") == 3  # boxed thumbnails
        page.screenshot(tmp_path / "web-chat-no-model.png")

        page.click("ul.sources a")
        page.wait_for("document.querySelectorAll('.box').length > 0")
        boxes = boxes_on_image(page)
        assert boxes and all(b["inside"] and b["width"] > 5 and b["height"] > 5 for b in boxes)
        assert any("parking" in b["text"].lower() for b in boxes)
