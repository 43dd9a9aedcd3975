"""The search page: a query box, results with thumbnails (matching words boxed) and snippets."""
from __future__ import annotations

import time
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from ...search_cmd import hit_json
from ..app import respond, state_of

MODES = ("hybrid", "dense", "lexical")


def _int(value, default: int, low: int, high: int) -> int:
    try:
        return min(high, max(low, int(value)))
    except (TypeError, ValueError):
        return default


async def view(request: Request):
    state = state_of(request)
    q = (request.query_params.get("q") or "").strip()
    k = _int(request.query_params.get("k"), 10, 1, 100)
    mode = request.query_params.get("mode", "hybrid")
    mode = mode if mode in MODES else "hybrid"
    hits, ms = [], 0.0
    if q:
        t0 = time.perf_counter()
        found = await run_in_threadpool(state.retriever.search, q, k, mode, state.within)
        ms = round(1000 * (time.perf_counter() - t0), 1)
        for rank, h in enumerate(found, 1):
            query = urlencode({"q": q})
            hits.append({"rank": rank, **hit_json(h), "url": f"/page/{h.page_id}?{query}",
                         "thumbnail": f"/page/{h.page_id}/image?w=220&{query}"})
    data = {"q": q, "k": k, "mode": mode, "hits": hits, "search_ms": ms}
    if "embed_model" not in state.index.meta:  # built from nothing yet: say so, as `pagerag search` does
        from index.stored_paths import shown
        from rag.prompts import ABSTAIN_EMPTY

        data["note"] = ABSTAIN_EMPTY.format(index=shown(str(state.index.folder)))
    return respond(request, "search.html", data)
