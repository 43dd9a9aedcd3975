"""`pagerag serve`: the local web app (search, page viewer with evidence boxes, chat, conversations)."""
from __future__ import annotations

import ipaddress
import socket

import click

from . import model_options as mo
from .ask_cmds import RETRIEVAL_OPTIONS, ask_settings
from .common import friendly_errors, index_option, open_index


def addresses(host: str) -> list[tuple]:
    """What `host` resolves to, as getaddrinfo gives it: [(family, sockaddr), ...]; [] if it cannot be resolved."""
    try:
        found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError):
        return []
    return [(family, sockaddr) for family, _, _, _, sockaddr in found]


def is_loopback(host: str) -> bool:
    """Whether every address `host` resolves to is loopback: "127.1", "::1" and "localhost" are; "0.0.0.0" is not."""
    found = addresses(host)
    return bool(found) and all(ipaddress.ip_address(sockaddr[0].split("%")[0]).is_loopback
                               for _, sockaddr in found)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: a free one), so the printed port is the one served."""
    found = addresses(host)
    if not found:
        raise click.ClickException(f"--host {host} cannot be resolved to an address; give one such as 127.0.0.1")
    family, sockaddr = found[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((sockaddr[0], port, *sockaddr[2:]))
    except OSError as e:
        sock.close()
        import errno

        if e.errno == errno.EADDRNOTAVAIL:
            raise click.ClickException(f"cannot listen on {host} ({e.strerror}): it is not an address of this "
                                       "machine; give one of its own, e.g. 127.0.0.1 or 0.0.0.0 (all)") from None
        if e.errno == errno.EACCES:
            raise click.ClickException(f"cannot listen on {host}:{port} ({e.strerror}): ports below 1024 need "
                                       "root; pick another --port, or leave it out for a free one") from None
        raise click.ClickException(f"cannot listen on {host}:{port} ({e.strerror}); pick another --port") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but loopback exposes your pages to the network.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="Port [default: a free one, printed].")
@mo.apply(RETRIEVAL_OPTIONS)
@mo.apply(mo.MODEL_OPTIONS)
@mo.apply(mo.GENERATION_OPTIONS)
@index_option
@friendly_errors
def serve(host, port, index_dir, **kw):
    """Serve the index as a local web app: search, pages with evidence boxed, chat. Opens nothing by itself."""
    import threading

    import uvicorn

    from .web.app import WebState, create_app

    idx = open_index(index_dir)
    within = list(kw.pop("within")) or None
    if within:
        idx.documents_under(within)  # nothing indexed there: said now, not a web app that finds nothing
    settings = ask_settings(kw, within)
    state = WebState(idx, mo.model_settings(kw), settings, within=within)
    state.backend  # noqa: B018 - made now (loads nothing): a bad --backend/--base-url/-m is said before serving
    if not addresses(host):
        raise click.ClickException(f"--host {host} cannot be resolved to an address; give one such as 127.0.0.1")
    state.local_only = is_loopback(host)
    if not state.local_only:
        click.echo(f"Warning: listening on {host}, not loopback: anyone who can reach this machine can read "
                   "your indexed pages and use the model. Use --host 127.0.0.1 to keep it local.", err=True)
    sock = bind(host, port)
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"Serving {idx.folder} at http://{shown}:{sock.getsockname()[1]}/  (Ctrl-C to stop)", err=True)
    threading.Thread(target=state.warm, daemon=True).start()
    config = uvicorn.Config(create_app(state), log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])
