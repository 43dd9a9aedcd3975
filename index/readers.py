"""Reading worker processes under watch: a page that takes too long, or kills the process reading it,
costs itself (a failed page, recorded), not its document's other pages nor the build.

    readers = Readers(jobs=2, options=read_options, page_timeout=300)
    for results in readers.read(tasks, skip_doc=lambda doc_id: ...):   # lists of PageResult
        ...
    readers.stop()

A page whose reading outlasts `page_timeout` seconds (a 1 KB PDF whose drawings nest ten deep takes
hours to render) has its worker killed; a worker that dies by itself (out of memory, a crash in a
library on a hostile file) breaks the pool. Either way the pool is started again and the other pages
in flight are read again; the culprit's page comes back as a PageResult with its `error`. Which page
killed a worker that died by itself is found by reading the pages that were in flight again one at a
time: the one that kills its worker alone is the culprit.

Each pool's workers keep their temporary files in a folder of the pool's (`pagerag-read-<pid>-*` in the
system's temporary folder), removed when the pool is stopped or replaced: a killed worker cannot remove
the images it handed to Tesseract (megabytes a page), and a file that times out is read again on every
build. Folders left by a build that was itself killed (kill -9) are removed by the next build.
"""
from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import tempfile
import time
from collections import deque
from pathlib import Path
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Iterator

from .errors import PageragError
from .pages import PageResult, PageTask, ReadOptions, init_pool_worker, read_page

WATCH_SECONDS = 1.0  # how often the clocks of the pages being read are looked at
TEMP_PREFIX = "pagerag-read-"


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, e.g. `taskset` or a container's cpuset), else all."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def worker_count(jobs: int, pages: int | None = None) -> int:
    """Reading workers worth starting for `pages` pages under `-j jobs`: no more than the pages, nor the CPUs
    (a page is read by one process, busy on one CPU: more workers than CPUs only take turns).
    jobs=256 on 2 CPUs -> 2; jobs=8, pages=3 -> 3."""
    return max(1, min(jobs, usable_cpus(), jobs if pages is None else pages))


class ReadersFailed(PageragError):
    """The worker processes die before reading anything: not a file's fault."""


class Readers:
    def __init__(self, jobs: int, options: ReadOptions, page_timeout: float | None = None, read_ahead: int = 3):
        self.jobs = jobs
        self.read_ahead = read_ahead  # pages submitted ahead of the results, per worker
        self.options = options
        self.page_timeout = page_timeout
        self.context = multiprocessing.get_context("spawn")  # workers must not inherit the parent's OpenMP threads
        self.pool: ProcessPoolExecutor | None = None
        self.temp: str | None = None  # the pool's temporary folder
        self.started = None  # a queue of (pid, doc_id, page_no, time.monotonic()) as workers start pages
        self.running: dict[tuple[int, int], tuple[int, float]] = {}  # (doc_id, page_no) -> (pid, since)
        self.barren = 0  # deaths in a row with no page being read
        self.solo: PageTask | None = None  # the page being read alone to find which one kills its worker
        self.start()

    def start(self) -> None:
        """Spawn the workers now: they start Python and load their OCR engine while the build plans."""
        self.started = self.context.SimpleQueue()
        self.running = {}
        _remove_orphaned_temps()
        self.temp = tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-")
        self.pool = ProcessPoolExecutor(self.jobs, mp_context=self.context, initializer=init_pool_worker,
                                        initargs=(self.options, self.started, self.temp))
        for _ in range(self.jobs):
            self.pool.submit(_started)  # a spawn pool starts a worker per waiting task

    def stop(self, kill: bool = False) -> None:
        """Shut the workers down; `kill`: those still reading are killed first (Ctrl-C must not wait for
        a page that takes hours)."""
        if self.pool is None:
            return
        if kill:
            self._note_starts()
            for pid, _ in self.running.values():
                _kill(pid)
        self._shutdown()
        self.pool = None

    def _shutdown(self) -> None:
        """Wait for the pool's workers to end, then remove their temporary files."""
        try:
            self.pool.shutdown(wait=True, cancel_futures=True)
        finally:
            if self.temp is not None:
                shutil.rmtree(self.temp, ignore_errors=True)
                self.temp = None

    def read(self, tasks: list[PageTask], skip_doc: Callable[[int], bool] = lambda doc_id: False
             ) -> Iterator[list[PageResult]]:
        """The results of `tasks` in batches as they finish. Pages of a document `skip_doc` names (one that
        failed meanwhile) are not read."""
        queue = deque(tasks)
        alone: deque[PageTask] = deque()  # in flight when a worker died: read one at a time to find the culprit
        while queue or alone:
            pending: dict = {}
            try:
                while queue or alone or pending:
                    self._submit(queue, alone, pending, skip_doc)
                    if not pending:
                        break
                    done, _ = wait(pending, timeout=WATCH_SECONDS, return_when=FIRST_COMPLETED)
                    self._note_starts()
                    results, broken = [], False
                    for future in done:
                        try:
                            results.append(future.result())
                        except BrokenProcessPool:  # a worker died: this page is read again
                            broken = True
                            continue
                        task = pending.pop(future)
                        self.running.pop((task.doc_id, task.page_no), None)
                    if results:
                        self.barren = 0
                        yield results
                    if broken:
                        raise BrokenProcessPool("a reading worker died")
                    overdue = self._overdue(pending)
                    if overdue is not None:
                        yield [self._restart(overdue, pending, queue)]
                        pending = {}
            except BrokenProcessPool:
                yield from self._after_death(pending, queue, alone)

    def _submit(self, queue: deque, alone: deque, pending: dict, skip_doc) -> None:
        if self.solo is not None and self.solo not in pending.values():
            self.solo = None  # it was read
        if alone and not pending:
            task = self.solo = alone.popleft()
            pending[self.pool.submit(read_page_watched, task)] = task
        if alone or self.solo is not None:
            return  # nothing else is read beside a page read alone
        while queue and len(pending) < self.read_ahead * self.jobs:
            task = queue.popleft()
            if not skip_doc(task.doc_id):
                pending[self.pool.submit(read_page_watched, task)] = task

    def _note_starts(self) -> None:
        while not self.started.empty():
            pid, doc_id, page_no, since = self.started.get()
            self.running[(doc_id, page_no)] = (pid, since)

    def _overdue(self, pending: dict) -> PageTask | None:
        if not self.page_timeout:
            return None
        now = time.monotonic()
        for task in pending.values():
            pid_since = self.running.get((task.doc_id, task.page_no))
            if pid_since and now - pid_since[1] > self.page_timeout:
                _kill(pid_since[0])
                return task
        return None

    def _restart(self, culprit: PageTask, pending: dict, queue: deque) -> PageResult:
        """The pool after a worker was killed for time: the other pages in flight are read again."""
        queue.extendleft(reversed([t for t in pending.values() if t is not culprit]))
        self._fresh_pool()
        return PageResult(culprit, error=f"page {culprit.page_no} took longer than {self.page_timeout:g} s to read "
                          "(a page that draws too much, or an image too hard to decode); `--page-timeout` allows more")

    def _after_death(self, pending: dict, queue: deque, alone: deque) -> Iterator[list[PageResult]]:
        """A worker died: pages in flight are read again, alone, until the one that kills its worker alone
        is known; the rest go back to the queue. One page in flight is not yet the culprit: the worker that
        died may have been between pages, killed from outside (the OOM killer choosing it, an admin)."""
        self._note_starts()
        started = [t for t in pending.values() if (t.doc_id, t.page_no) in self.running]
        waiting = [t for t in pending.values() if (t.doc_id, t.page_no) not in self.running]
        if not started:  # no page was being read: the workers cannot even start (their OCR engine...)
            self.barren += 1
            if self.barren >= 3:
                raise ReadersFailed("the reading worker processes keep dying before reading any page; run the "
                                    "build with -j 1 to see why")
        queue.extendleft(reversed(waiting))
        self._fresh_pool()
        if len(started) == 1 and started[0] is self.solo:  # the page read alone killed its worker again
            [culprit] = started
            yield [PageResult(culprit, error=f"page {culprit.page_no}: the process reading it died (out of memory, "
                              "or a crash in a library on this file)")]
            return
        alone.extend(started)

    def _fresh_pool(self) -> None:
        self._note_starts()
        for pid, _ in self.running.values():
            _kill(pid)
        self._shutdown()
        self.start()


def read_page_watched(task: PageTask) -> PageResult:
    """read_page, first telling the build which process reads which page since when."""
    from . import pages

    if pages._started is not None:
        pages._started.put((os.getpid(), task.doc_id, task.page_no, time.monotonic()))
    return read_page(task)


def _kill(pid: int) -> None:
    """SIGKILL a worker and everything it started (a Tesseract it runs would read on, orphaned). Each
    process is stopped before its children are listed, so that none starts one in between."""
    for p in reversed(_stopped_tree(pid)):  # children first
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _stopped_tree(pid: int) -> list[int]:
    """`pid` and its descendants, each SIGSTOPped (Linux lists children in /proc; elsewhere: `pid` alone)."""
    try:
        os.kill(pid, signal.SIGSTOP)
    except ProcessLookupError:
        return []
    tree = [pid]
    try:
        threads = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:  # gone already, or not Linux
        threads = []
    for thread in threads:  # a child belongs to the thread that started it
        try:
            children = (thread / "children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            tree += _stopped_tree(child)
    return tree


def _remove_orphaned_temps() -> None:
    """Remove the pool folders of builds that are gone (killed with -9: nothing of theirs could clean up)."""
    root = Path(tempfile.gettempdir())
    try:
        folders = [f for f in root.iterdir() if f.name.startswith(TEMP_PREFIX)]
    except OSError:
        return
    for folder in folders:
        try:
            owner = int(folder.name[len(TEMP_PREFIX):].split("-")[0])
            os.kill(owner, 0)
        except ValueError:
            continue
        except ProcessLookupError:  # its build is gone
            shutil.rmtree(folder, ignore_errors=True)
        except PermissionError:  # another user's live process
            continue


def _started() -> None:
    """A no-op for the pool: submitting one per worker makes it start them."""
