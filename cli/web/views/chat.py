"""The chat view, and its streaming answer endpoint (newline-delimited JSON events).

POST /chat/ask {"question": "...", "cid": "optional conversation id"} streams
{"type": "text", "text": "..."} per piece of the answer, then one {"type": "done", ...}
with the checked answer, its sources, evidence boxes and links (or {"type": "error"}).
"""
from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import asdict
from urllib.parse import urlencode

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import StreamingResponse

from index.stored_paths import shown as printable

from ..app import respond, state_of

log = logging.getLogger("pagerag.web")
NO_MODEL = "No answer: the model could not be used. {error}"  # the words `pagerag ask` uses


def model_named(state) -> dict | None:
    """The chat's backend and model, the model by the name the backend will use ("default" said nothing)."""
    from rag.backends import ModelUnavailable, get_backend

    if state.model_settings is None:
        return None
    settings = state.model_settings.resolved()
    try:
        model = settings.model or get_backend(settings.backend).default_model or None
    except ModelUnavailable:  # an unknown PAGERAG_BACKEND: asking says so
        model = settings.model
    return {"backend": settings.backend, "model": model}


def chat_data(state, conversation: dict | None) -> dict:
    return {"conversation": conversation, "model": model_named(state)}


async def view(request: Request):
    from .conversations import conversation_data

    state = state_of(request)
    cid = request.query_params.get("cid")
    return respond(request, "chat.html", chat_data(state, conversation_data(state, cid) if cid else None))


def answer_payload(state, answer) -> dict:
    """The final event: the answer as checked, with a link per source to its page, evidence boxed."""
    from rag.highlight import answer_evidence

    evidence = {ev.n: ev for ev in answer_evidence(state.index, answer)}
    sources = []
    for s in answer.sources:
        ev = evidence.get(s.n)
        if answer.turn and answer.conversation_id:
            url = f"/conversations/{answer.conversation_id}/turns/{answer.turn}/sources/{s.n}"
        else:
            url = f"/page/{ev.page_id}?" + urlencode({"q": answer.question}) if ev else None
        kind = "query" if ev and ev.text == answer.question else "statement"
        thumb = (f"/page/{ev.page_id}/image?" + urlencode({"w": 220, "q": ev.text, "kind": kind, "n": s.n})
                 if ev else None)
        sources.append({"n": s.n, "path": printable(s.path), "page": s.page, "title": s.title, "image": s.image,
                        "score": s.score, "url": url, "thumbnail": thumb, "cited": s.n in answer.cited,
                        "evidence": ev.to_json() if ev else None})
    return {"type": "done", "answer": answer.text, "question": answer.question,
            "model_error": NO_MODEL.format(error=answer.model_error) if answer.model_error else None,
            "abstained": answer.abstained, "support": asdict(answer.support) if answer.support else None,
            "truncated": answer.truncated, "cited": answer.cited,
            "removed_citations": answer.removed_citations,
            "conversation_id": answer.conversation_id, "turn": answer.turn, "backend": answer.backend,
            "model": answer.model, "sources": sources, "links": {s["n"]: s["url"] for s in sources if s["url"]}}


ASK_BODY = 'send a JSON object: {"question": "...", "cid": "optional conversation id"}'


async def _question(request: Request) -> tuple[str, str | None]:
    """The question and conversation id of a POST /chat/ask; 400 (415 for another content type) if the body
    is not a JSON object with a non-empty string question."""
    raw = await request.body()
    try:
        body = json.loads(raw)
    except RecursionError:  # JSON nested thousands deep: not a question, and no reason for a 500
        raise HTTPException(400, f"the body is JSON nested too deep: {ASK_BODY}") from None
    except ValueError:  # a form, or not JSON at all (incl. bytes that are not UTF-8)
        kind = request.headers.get("content-type", "").split(";")[0].strip()
        if kind and kind != "application/json":
            raise HTTPException(415, f"{kind} is not accepted: {ASK_BODY}") from None
        raise HTTPException(400, f"the body is not JSON: {ASK_BODY}") from None
    if not isinstance(body, dict):
        raise HTTPException(400, f"the body is a JSON {type(body).__name__}, not an object: {ASK_BODY}")
    question, cid = body.get("question"), body.get("cid")
    if not isinstance(question, str) or not question.strip():
        raise HTTPException(400, f"ask a question (a non-empty string): {ASK_BODY}")
    if cid is not None and cid != "" and not isinstance(cid, str):
        raise HTTPException(400, f"cid must be a string: {ASK_BODY}")
    try:
        (question + (cid or "")).encode("utf-8")
    except UnicodeEncodeError:  # JSON can spell a lone surrogate ("\ud800"), which no encoder takes
        raise HTTPException(400, "the question or cid is not valid Unicode (a lone surrogate)") from None
    return question.strip(), cid or None


async def ask(request: Request):
    from index.errors import PageragError
    from rag.conversations import ConversationStore

    state = state_of(request)
    question, cid = await _question(request)
    if cid is not None:  # an unknown or ambiguous id: 404 before anything streams (app.library_error)
        cid = ConversationStore(state.index.folder).resolve(cid)
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()

    def put(item: dict) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, item)

    def work() -> None:
        from rag.assistant import Assistant

        try:
            with state.generating:  # one answer at a time: one model
                store = ConversationStore(state.index.folder)
                conversation = store.resolve(cid) if cid else None
                assistant = Assistant(state.index, state.backend, store, state.ask_settings, state.retriever)
                answer = assistant.ask(question, conversation, on_text=lambda piece: put({"type": "text",
                                                                                         "text": piece}))
                put(answer_payload(state, answer))
        except PageragError as e:
            put({"type": "error", "error": str(e)})
        except Exception as e:  # a backend failing in its own way: say so, keep serving
            log.exception("answering %r failed", question)
            put({"type": "error", "error": f"{type(e).__name__}: {e}"})

    loop.run_in_executor(None, work)

    async def events():
        while True:
            item = await queue.get()
            yield json.dumps(item, ensure_ascii=False) + "\n"
            if item["type"] in ("done", "error"):
                return

    return StreamingResponse(events(), media_type="application/x-ndjson")
