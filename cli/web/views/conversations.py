"""The conversation list (the same conversations.db as the CLI), and one conversation."""
from __future__ import annotations

from dataclasses import asdict

from starlette.exceptions import HTTPException
from starlette.requests import Request

from ..app import respond, state_of


def turn_data(cid: str, ord_: int, turn) -> dict:
    """A stored turn, with a link for each [n] to the cited page, its evidence boxed."""
    links = {s["n"]: f"/conversations/{cid}/turns/{ord_}/sources/{s['n']}" for s in turn.sources}
    return {**asdict(turn), "turn": ord_, "links": links,
            "sources": [{**s, "url": links[s["n"]]} for s in turn.sources]}


def conversation_data(state, cid: str) -> dict:
    from index.errors import NotIndexed
    from rag.conversations import ConversationStore

    try:
        conv = ConversationStore(state.index.folder).get(cid)
    except NotIndexed as e:
        raise HTTPException(404, str(e)) from None
    return {"id": conv.id, "created": conv.created, "updated": conv.updated, "title": conv.title,
            "turns": [turn_data(conv.id, i, t) for i, t in enumerate(conv.turns, 1)]}


async def listing(request: Request):
    from rag.conversations import ConversationStore

    rows = ConversationStore(state_of(request).index.folder).list(limit=200)
    items = [{**asdict(c), "n_turns": n, "url": f"/chat?cid={c.id}"} for c, n in rows]
    return respond(request, "conversations.html", {"conversations": items})


async def detail(request: Request):
    from .chat import chat_data

    state = state_of(request)
    return respond(request, "chat.html", chat_data(state, conversation_data(state, request.path_params["cid"])))
