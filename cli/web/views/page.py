"""The page viewer: a page image with the words supporting a query (or a cited statement) boxed.

Images are served by page id only; the file path comes from the index, never from the request.
"""
from __future__ import annotations

import io
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from index.stored_paths import shown as printable

from ..app import MAX_ID, respond, state_of
from .search import _int

KINDS = ("query", "answer", "statement")
VIEW_WIDTH = 1100  # px of the page image in the viewer (scaled once, cached)


def _page_row(state, page_id: int):
    from index.errors import NotIndexed

    if not 0 <= page_id <= MAX_ID:
        raise HTTPException(404, f"no page {page_id} in this index")
    try:
        row = state.index.page_by_id(page_id)
    except NotIndexed:
        raise HTTPException(404, f"no page {page_id} in this index") from None
    if state.within and row["doc_id"] not in state.index.documents_under(state.within):
        raise HTTPException(404, f"page {page_id} is not in the documents this server shows (serve --in)")
    return row


def _neighbours(state, row) -> dict:
    out = {}
    for name, page_no in (("previous", row["page_no"] - 1), ("next", row["page_no"] + 1)):
        try:
            out[name] = state.index.page(row["path"], page_no)["id"]
        except Exception:
            out[name] = None
    return out


def page_data(state, row, evidence, query: dict) -> dict:
    """What the viewer shows: the page, its image URL, the evidence boxes (fractions and pixels)."""
    params = urlencode({k: v for k, v in query.items() if v})
    nav = _neighbours(state, row)
    return {"page": {"id": row["id"], "path": printable(row["path"]), "title": row["title"], "page": row["page_no"],
                     "width": row["width"], "height": row["height"], "source": row["source"],
                     "text": row["text"] or "", "caption": row["caption"]},
            "image": f"/page/{row['id']}/image?w={VIEW_WIDTH}",
            "boxed_image": f"/page/{row['id']}/image?w={VIEW_WIDTH}&{params}" if params else None,
            "evidence": evidence.to_json(), "colour": evidence.n or 1, "query": query,
            "previous": f"/page/{nav['previous']}?{params}" if nav["previous"] else None,
            "next": f"/page/{nav['next']}?{params}" if nav["next"] else None}


async def view(request: Request):
    from rag.highlight import page_evidence

    state = state_of(request)
    row = _page_row(state, request.path_params["page_id"])
    q = request.query_params.get("q") or ""
    kind = request.query_params.get("kind", "query")
    kind = kind if kind in KINDS else "query"
    n = _int(request.query_params.get("n"), 1, 1, 99)
    ev = await run_in_threadpool(page_evidence, state.index, row["id"], q, kind, None, 5, n)
    query = {"q": q, "kind": kind if q else "", "n": n if q else None}  # nothing looked for: nothing to box
    return respond(request, "page.html", page_data(state, row, ev, query))


async def cited(request: Request):
    """The page behind citation [n] of a stored answer, with the words its statements rest on boxed."""
    from index.errors import NotIndexed
    from rag.conversations import ConversationStore
    from rag.highlight import sources_evidence

    state = state_of(request)
    cid, turn_no, n = (request.path_params[k] for k in ("cid", "turn", "n"))
    try:
        conv = ConversationStore(state.index.folder).get(cid)
    except NotIndexed as e:
        raise HTTPException(404, str(e)) from None
    if not 1 <= turn_no <= len(conv.turns):
        raise HTTPException(404, f"conversation {cid} has no turn {turn_no}")
    turn = conv.turns[turn_no - 1]
    source = next((s for s in turn.sources if s["n"] == n), None)
    if source is None:
        raise HTTPException(404, f"turn {turn_no} of conversation {cid} has no source [{n}]")
    found = await run_in_threadpool(sources_evidence, state.index, turn.question, turn.answer,
                                    [(n, source["path"], source["page"])], turn.abstained)
    if not found:
        raise HTTPException(404, f"{source['path']}, page {source['page']} is no longer in the index")
    row = _page_row(state, found[0].page_id)
    data = page_data(state, row, found[0], {"q": found[0].text, "kind": "statement", "n": n})
    data["citation"] = {"conversation": conv.id, "turn": turn_no, "n": n, "question": turn.question,
                        "answer": turn.answer}
    return respond(request, "page.html", data)


async def image(request: Request):
    """The page as JPEG, `w` px wide (100..2000); with `q`, the matching words boxed (colour of `n`)."""
    state = state_of(request)
    row = _page_row(state, request.path_params["page_id"])
    width = _int(request.query_params.get("w"), VIEW_WIDTH, 100, 2000)
    q = request.query_params.get("q") or ""
    kind = request.query_params.get("kind", "query")
    kind = kind if kind in KINDS else "query"
    n = _int(request.query_params.get("n"), 1, 1, 99)
    key = (row["id"], row["width"], row["height"], width, q, kind, n)
    # the file moved or became unreadable since indexing: BadInput, answered 410 with what to do (app.library_error)
    data = await run_in_threadpool(state.cached_image, key, lambda: _render(state, row["id"], width, q, kind, n))
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


def _render(state, page_id: int, width: int, q: str, kind: str, n: int) -> bytes:
    from rag.highlight import draw, page_evidence

    key = (page_id, width)
    plain = state.cached_image(("plain", *key), lambda: _scaled(state, page_id, width))
    if not q:
        return plain
    from PIL import Image

    ev = page_evidence(state.index, page_id, q, kind=kind, limit=5)
    out = io.BytesIO()
    draw(Image.open(io.BytesIO(plain)), [(ev.regions, n)], label=False).save(out, "JPEG", quality=85)
    return out.getvalue()


def _scaled(state, page_id: int, width: int) -> bytes:
    from PIL import Image

    from rag.highlight import page_image_by_id

    row = state.index.page_by_id(page_id)
    # a PDF page is rendered at about the resolution asked for (a letter page is 8.5 in wide)
    dpi = max(30, min(300, round(width / 8.0)))
    img = page_image_by_id(state.index, page_id, dpi=dpi)
    if img.width > width:
        img = img.resize((width, max(1, round(img.height * width / img.width))), Image.LANCZOS)
    out = io.BytesIO()
    img.convert("RGB").save(out, "JPEG", quality=85)
    return out.getvalue()
