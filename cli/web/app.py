"""The Starlette application: shared state, HTML-or-JSON responses, routes.

    app = create_app(WebState(Index.open(folder), model_settings, ask_settings))

One Index (SQLite opened for use from several threads; the web app only reads it) and one
Retriever serve every request (an index folder deleted and built again, or restored from a backup, while
the app runs is opened again; one deleted or moved away is said, 503, not served from the old file); conversations get a fresh ConversationStore per request
(its connection belongs to the thread that made it). One answer is generated at a time.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))


@dataclass
class WebState:
    index: object  # index.store.Index
    model_settings: object | None = None  # rag.settings.ModelSettings; None: no model configured
    ask_settings: object | None = None  # rag.assistant.AskSettings
    images: "OrderedDict[tuple, bytes]" = field(default_factory=OrderedDict)  # scaled page images, LRU
    image_cache_size: int = 96
    generating: threading.Lock = field(default_factory=threading.Lock)
    local_only: bool = False  # bound to loopback: answer only loopback Host names (guard.Guard)
    within: list | None = None  # `serve --in`: the files or folders searched and shown; None: the whole index
    _retriever: object | None = None
    _backend: object | None = None
    _served: tuple | None = None  # (st_dev, st_ino) of the index.db being served
    _reopening: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self):
        from index.location import db_identity

        self._served = db_identity(self.index.folder)

    def check_index(self) -> None:
        """The index folder still holds the database being served: one replaced meanwhile (the folder
        deleted and built again, a backup restored) is opened in its place, with a fresh retriever and
        no cached images; one gone (deleted, moved) raises IndexGone. An open SQLite file outlives its
        name, so without this the app would go on serving pages of a deleted index."""
        from index.location import db_identity, gone_message

        if db_identity(self.index.folder) == self._served:
            return
        from index.errors import IndexGone
        from index.store import Index

        with self._reopening:
            now = db_identity(self.index.folder)
            if now == self._served:
                return
            if now is None:
                raise IndexGone(gone_message(self.index.folder, "serve"))
            fresh = Index.open(self.index.folder)  # the old one is left to requests still using it
            self.index, self._served, self._retriever = fresh, now, None
            self.images.clear()

    @property
    def retriever(self):
        if self._retriever is None:
            from rag.retrieve import Retriever

            self._retriever = Retriever(self.index)
        return self._retriever

    @property
    def backend(self):
        if self._backend is None and self.model_settings is not None:
            from rag.settings import create_backend

            self._backend = create_backend(self.model_settings)
        return self._backend

    def warm(self) -> None:
        """Load FAISS and the query encoder, so that the first search is as fast as the others."""
        if "embed_dim" in self.index.meta:
            self.index.vectors  # noqa: B018 (loads and reconciles)
            self.retriever.embedder.encode_query("warm up")

    def cached_image(self, key: tuple, make) -> bytes:
        data = self.images.get(key)
        if data is None:
            data = make()
            self.images[key] = data
            while len(self.images) > self.image_cache_size:
                self.images.popitem(last=False)
        else:
            self.images.move_to_end(key)
        return data


API_PATHS = ("/chat/ask",)  # endpoints that speak JSON only, their errors too
MAX_ID = 2**63 - 1  # SQLite's largest integer: a larger id in a URL names nothing


def wants_json(request: Request) -> bool:
    return request.url.path.endswith(".json") or request.url.path in API_PATHS


def respond(request: Request, template: str, data: dict, status_code: int = 200) -> Response:
    """The view's data as JSON at `….json`, else rendered with its template."""
    if wants_json(request):
        return JSONResponse(data, status_code=status_code)
    return templates.TemplateResponse(request, template, {"data": data, **data}, status_code=status_code)


def both(path: str, endpoint, **kw) -> list[Route]:
    """A route for the HTML page and its `.json` twin (first: `{cid:str}` would take 'x.json' too)."""
    return [Route(path + ".json", endpoint, **kw), Route(path, endpoint, **kw)]


async def not_found(request: Request, exc: HTTPException) -> Response:
    data = {"error": exc.detail, "status": exc.status_code}
    headers = getattr(exc, "headers", None)  # e.g. a 405's Allow: the methods the route takes
    if wants_json(request) or request.url.path.endswith((".png", ".jpg")) or "/image" in request.url.path:
        return JSONResponse(data, status_code=exc.status_code, headers=headers)
    return templates.TemplateResponse(request, "error.html", {"data": data, **data}, status_code=exc.status_code,
                                      headers=headers)


async def library_error(request: Request, exc: Exception) -> Response:
    """A named error of the library that a request ran into: its message, with the status it means
    (a page or conversation that is not there: 404; an indexed file gone or unreadable: 410; a bad
    value: 400). Never a bare 500 for what the request asked."""
    from index.errors import BadArgument, BadInput, NotIndexed

    status = 404 if isinstance(exc, NotIndexed) else 410 if isinstance(exc, BadInput) else \
        400 if isinstance(exc, BadArgument) else 503
    return await not_found(request, HTTPException(status, str(exc)))


def create_app(state: WebState):
    """The app, behind guard.Guard (Host names, cross-site writes, body size)."""
    from .guard import Guard

    return Guard(starlette_app(state), state.local_only, API_PATHS)


def starlette_app(state: WebState) -> Starlette:
    from . import filters
    from .views import chat, conversations, page, search, status

    filters.install(templates.env)
    routes = [
        Route("/", lambda request: RedirectResponse("/search")),
        *both("/search", search.view),
        *both("/page/{page_id:int}", page.view),
        Route("/page/{page_id:int}/image", page.image),
        *both("/chat", chat.view),
        Route("/chat/ask", chat.ask, methods=["POST"]),
        *both("/conversations", conversations.listing),
        *both("/conversations/{cid:str}", conversations.detail),
        *both("/conversations/{cid:str}/turns/{turn:int}/sources/{n:int}", page.cited),
        *both("/status", status.view),
        Mount("/static", app=StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    from index.errors import PageragError

    app = Starlette(routes=routes, exception_handlers={HTTPException: not_found, PageragError: library_error})
    app.state.web = state
    return app


def state_of(request: Request) -> WebState:
    state = request.app.state.web
    state.check_index()
    return state
