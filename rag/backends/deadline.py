"""A wall-clock deadline on a blocking iterator: its items, handed over from a worker thread.

    pump = Pump(lambda pump: read_reply(pump), deadline=time.monotonic() + 120)
    try:
        for item in pump:          # raises DeadlinePassed at the deadline, whatever the socket does
            ...
    finally:
        pump.close()               # shuts the reply's socket, so the worker stops at its next read

An HTTP client's timeouts bound each socket read, not the whole reply: a server that sends a
keep-alive comment every few seconds, or one byte at a time, keeps every read short and the
reply endless. The client library blocks inside such reads without returning to us, so the
deadline is kept by the caller's thread while a worker does the reading.
"""
from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time
from typing import Callable, Iterator


class DeadlinePassed(Exception):
    """The deadline passed before the iterator finished."""


class Abandoned(Exception):
    """Raised in a worker whose caller has gone (see on_request)."""


def on_request(*_args) -> None:
    """An HTTP client hook: counts a worker's requests (retries included), and refuses them once its
    caller gave up, so that nothing is asked again after the deadline."""
    pump = getattr(threading.current_thread(), "pagerag_pump", None)
    if pump is None:
        return
    if pump._stop.is_set():
        raise Abandoned("the caller stopped waiting for this reply")
    pump.requests += 1


class Pump:
    """Iterates `produce(pump)` on a daemon thread; the caller gets its items, its error, or DeadlinePassed.

    `produce` may set `pump.response` (an httpx-style response) once the reply's headers are in:
    close() then shuts that connection's socket if the worker is still reading it.
    """

    def __init__(self, produce: Callable[["Pump"], Iterator], deadline: float):
        self.deadline = deadline  # time.monotonic() value
        self.response = None
        self.requests = 0  # HTTP requests the worker sent, counted by on_request
        self._items: queue.SimpleQueue = queue.SimpleQueue()  # (True, item) | (False, error or None at the end)
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(produce,), name="pagerag-reply", daemon=True)
        self._thread.pagerag_pump = self  # read by on_request
        self._thread.start()

    def _run(self, produce: Callable[["Pump"], Iterator]) -> None:
        items = None
        try:
            items = produce(self)
            for item in items:
                if self._stop.is_set():
                    return
                self._items.put((True, item))
            self._items.put((False, None))
        except BaseException as err:  # noqa: BLE001 - handed to the caller's thread, which decides
            self._items.put((False, err))
        finally:
            self._done.set()
            if items is not None and hasattr(items, "close"):
                with contextlib.suppress(Exception):
                    items.close()

    def __iter__(self) -> Iterator:
        while True:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise DeadlinePassed
            try:
                ok, item = self._items.get(timeout=remaining)
            except queue.Empty:
                raise DeadlinePassed from None
            if ok:
                yield item
            elif item is None:
                return
            else:
                raise item

    def close(self) -> None:
        """Stop the worker: it drops what it reads next; a socket it may be blocked on is shut."""
        self._stop.set()
        if not self._done.is_set():
            shut_socket(self.response)


def shut_socket(response) -> None:
    """Shut down the connection under an httpx/httpcore response: a read blocked on it returns at once.

    shutdown(), unlike close(), wakes a read blocked in another thread and frees no file descriptor
    that thread could then read from by mistake.
    """
    stream = getattr(response, "extensions", {}).get("network_stream") if response is not None else None
    sock = stream.get_extra_info("socket") if stream is not None else None
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
