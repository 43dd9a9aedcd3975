"""Index status: what the index holds, the model the chat uses."""
from __future__ import annotations

from starlette.requests import Request

from ..app import respond, state_of
from .chat import model_named


async def view(request: Request):
    from cli.common import human_bytes
    from cli.index_cmds import index_status

    state = state_of(request)
    data = index_status(state.index)
    data["chat_model"] = model_named(state)
    data["size"] = human_bytes(data["size_bytes"])
    return respond(request, "status.html", {"status": data})
