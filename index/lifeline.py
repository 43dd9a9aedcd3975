"""Worker processes die with the process that started them, however it ends (kill -9 included).

Without this, OCR workers of a killed build live on (hundreds of MB each) and keep its
stdout open, so `pagerag index build ... | cat` never ends.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1


def die_with_parent(poll_seconds: float = 1.0) -> None:
    """Call first thing in a worker: the kernel kills it when its parent dies (Linux); a watchdog elsewhere."""
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)

    def watch():
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        os._exit(1)

    threading.Thread(target=watch, name="pagerag-lifeline", daemon=True).start()
