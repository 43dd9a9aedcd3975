"""Index status: what the index holds, the model the chat uses."""
from __future__ import annotations

from starlette.requests import Request

from ..app import respond, state_of


async def view(request: Request):
    from cli.common import human_bytes
    from cli.index_cmds import index_status

    state = state_of(request)
    data = index_status(state.index)
    settings = state.model_settings.resolved() if state.model_settings is not None else None
    data["chat_model"] = {"backend": settings.backend, "model": settings.model} if settings else None
    data["size"] = human_bytes(data["size_bytes"])
    return respond(request, "status.html", {"status": data})
