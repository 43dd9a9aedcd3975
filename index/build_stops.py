"""Stopping a build cleanly: SIGTERM, SIGHUP and Ctrl-C end it as BuildInterrupted, never inside a commit."""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

from .build_report import BuildReport


@contextmanager
def _sigterm_interrupts():
    """SIGTERM (a service stop, `kill`) and SIGHUP (the terminal closed) stop a build the way Ctrl-C
    does: cleanly, resumable. Any of them arriving while a batch is committed takes effect after it
    (`_STOPS.holding`): a document's last page and its 'done' mark are never split by a stop."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stops = [signal.SIGTERM, signal.SIGHUP]
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not when started with Ctrl-C ignored
        stops.append(signal.SIGINT)
    before = {s: signal.signal(s, _STOPS) for s in stops}
    try:
        yield
    finally:
        _STOPS.pending = False  # a stop that came with another error: the build is over either way
        for s, handler in before.items():
            signal.signal(s, handler)


class _DeferredStop:
    """A stop signal's handler: KeyboardInterrupt now, or, inside `holding()`, when it ends."""

    def __init__(self):
        self.depth = 0
        self.pending = False

    def __call__(self, signum, frame):
        if self.depth:
            self.pending = True
            return
        raise KeyboardInterrupt

    @contextmanager
    def holding(self):
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1
        if not self.depth and self.pending:
            self.pending = False
            raise KeyboardInterrupt


_STOPS = _DeferredStop()


class BuildInterrupted(KeyboardInterrupt):
    """Ctrl-C during a build: what was committed stays; the next build resumes from there."""

    def __init__(self, report: BuildReport):
        super().__init__("interrupted")
        self.report = report
