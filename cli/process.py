"""The process around a command: standard streams that always work, and stop signals that always end it cleanly.

    with command_process():   # in PageragGroup.main, around every command
        ...

- A command started with stdin, stdout or stderr closed (cron, a daemon, `2>&-`) gets
  /dev/null there: otherwise the first file opened takes descriptor 0–2, where any write
  meant for the terminal (a C library's warning) would land, and Python has no
  `sys.stderr` to print a progress bar to.
- Text the terminal's encoding cannot show (a Latin-1 locale, `PYTHONIOENCODING=ascii`)
  is written escaped (`\\u2713`), never as a UnicodeEncodeError.
- SIGTERM and SIGHUP (a service stop, a closed terminal) end a command the way Ctrl-C does:
  one line, exit code 130 (`index build` stops cleanly and resumes next time). Ctrl-C that no
  command handles (while it imports or opens the index) is exit 130 too, not click's
  "Aborted!" with 1.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
from contextlib import contextmanager

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def standard_streams() -> None:
    """Re-open closed descriptors 0–2 on /dev/null; make sys.stdout/stderr escape what they cannot encode."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            got = os.open(os.devnull, os.O_RDWR)  # the lowest free descriptor: this one
            if got != fd:
                os.dup2(got, fd)
                os.close(got)
    for name, mode in (("stdin", "r"), ("stdout", "w"), ("stderr", "w")):
        if getattr(sys, name) is None:  # Python found the descriptor closed at start-up
            setattr(sys, name, open(os.devnull, mode))
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None and getattr(stream, "errors", None) == "strict":
            try:
                reconfigure(errors="backslashreplace")
            except (ValueError, OSError):  # a stream that cannot change now: leave it
                pass


class Stopped(BaseException):
    """SIGTERM or SIGHUP arrived. Not a KeyboardInterrupt, so that what catches Ctrl-C to go on (chat
    stopping one answer) does not swallow it; `index build` installs its own handler (a clean stop)."""


@contextmanager
def stop_signals():
    """Within: SIGTERM and SIGHUP raise Stopped in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_signal(signum, frame):
        raise Stopped(signal.Signals(signum).name)

    before = {s: signal.signal(s, on_signal) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
