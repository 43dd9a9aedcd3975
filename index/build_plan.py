"""Planning a build: which files to read, which pages of them, and which to take from an indexed twin.

A file whose size+mtime (or else sha256) matches its indexed version is left alone; a changed one is
removed and read again; an interrupted one resumes at the pages it lacks; a moved or copied one takes its
pages from its indexed twin (not read again). Pages that failed in an earlier build are read again only
when the file changed or `retry_failed` asks. `Planner` is a part of index.builder._Builder, whose
state it shares (idx, options, report, files, titles, paths, remaining, copies) and whose `skip`,
`finish` and `start_workers` it calls.
"""
from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from .build_report import FailedPage, PartialDocument
from .errors import BadInput, UnsupportedFile
from .pages import PageResult, PageTask
from .sources import check_size, kind_of, presence, probe, walk
from .stored_paths import db_path, fs_path, is_under


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _is_folder(path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


class Planner:
    def plan(self, paths: list[Path]) -> list[PageTask]:
        tasks: list[PageTask] = []
        unreadable: set[str] = set()
        self.earlier_failures = self.idx.failed_pages()

        def folder_error(path, e: OSError):
            unreadable.add(db_path(path))
            self.skip(db_path(path), f"cannot read this folder ({e.strerror}); its files were not indexed", True)

        def link_skip(path, reason):
            self.skip(db_path(path), reason, is_error=False)

        for file, root in walk(paths, on_error=folder_error, on_skip=link_skip, exclude=self.idx.folder):
            key = db_path(file)
            try:
                kind = kind_of(file)
            except UnsupportedFile as e:
                self.skip(key, str(e), is_error=False)
                continue
            try:
                tasks.extend(self.plan_file(file, root, kind))
            except (BadInput, OSError) as e:
                self.skip(key, str(e) if isinstance(e, BadInput) else f"cannot read: {e.strerror}", is_error=True)
            self.start_workers(len(tasks), planning=True)
        roots = [db_path(p.resolve()) for p in paths]
        for path, reason, _ in self.idx.skipped():
            if not any(is_under(path, r) for r in roots):
                continue
            if reason.startswith("cannot read this folder"):  # a folder readable again: forget its old skip
                if path not in unreadable:
                    self.idx.clear_skip(path)
            elif _is_folder(fs_path(path)):  # a file now a folder, walked as one: its file's skip is stale
                self.idx.clear_skip(path)
        return tasks

    def plan_file(self, file: Path, root: Path, kind: str) -> list[PageTask]:
        key, st = db_path(file), file.stat()
        if not stat.S_ISREG(st.st_mode):  # reading a pipe would wait forever
            raise BadInput("not a regular file (a pipe, device or socket)")
        doc = self.idx.document(key)
        if doc and doc["status"] == "done" and doc["size"] == st.st_size and doc["mtime_ns"] == st.st_mtime_ns:
            return self.unchanged(doc, file, kind, (str(file), st.st_size, st.st_mtime_ns, doc["sha256"]))
        check_size(st.st_size, self.options.limits)  # before hashing: a 20 GB file is refused at once
        sha = file_sha256(file)
        planned = (str(file), st.st_size, st.st_mtime_ns, sha)
        if doc and doc["sha256"] == sha:
            self.files[doc["id"]] = planned
            self.idx.touch_document(doc["id"], st.st_mtime_ns)
            if doc["status"] == "done":
                self.idx.clear_skip(key)
                return self.unchanged(doc, file, kind, planned)
            self.report.resumed += 1
            done = self.idx.done_pages(doc["id"])
            if not self.options.retry_failed:  # pages that failed before this build was interrupted
                done |= {n for n, _ in self.earlier_failures.get(doc["id"], [])}
            todo = [n for n in range(1, doc["n_pages"] + 1) if n not in done]
            twin = self.idx.twin(sha, doc["n_pages"])
            if twin is not None:  # a copy from a twin was interrupted: copy the rest
                return self.copy_twin(twin, doc["id"], str(file), kind, doc["title"], set(todo))
            return self.schedule(doc["id"], str(file), kind, doc["title"], todo)
        info = probe(file, root, self.options.limits)  # a broken new version leaves the indexed one in place
        if doc:
            self.idx.remove_document(doc["id"])
            self.report.changed += 1
        else:
            self.report.new += 1
        twin = self.idx.twin(sha, info.n_pages)
        doc_id = self.idx.add_document(key, sha, st.st_size, st.st_mtime_ns, kind, info.title, info.n_pages)
        self.files[doc_id] = planned
        if twin is not None:  # the same bytes are indexed elsewhere: their words, re-chunked and embedded here
            return self.copy_twin(twin, doc_id, str(file), kind, info.title)
        return self.schedule(doc_id, str(file), kind, info.title, range(1, info.n_pages + 1))

    def unchanged(self, doc, file: Path, kind: str, planned: tuple) -> list[PageTask]:
        """A finished document whose file is as indexed: nothing to read, unless it lacks pages that failed
        and `retry_failed` asks for them."""
        self.report.unchanged += 1
        failures = self.earlier_failures.get(doc["id"])
        if not failures:
            return []
        if not self.options.retry_failed:  # said again (exit 3), not read again: a page may take minutes to fail
            self.report.partial.append(PartialDocument(doc["path"], doc["n_pages"],
                                                       [FailedPage(n, r) for n, r in failures], earlier=True))
            return []
        self.report.unchanged -= 1
        self.report.retried += 1
        self.files[doc["id"]] = planned
        return self.schedule(doc["id"], str(file), kind, doc["title"], [n for n, _ in failures])

    def copy_twin(self, twin, doc_id: int, file: str, kind: str, title: str,
                  only: set[int] | None = None) -> list[PageTask]:
        """Plan a moved or copied file as copies of its twin's pages: OCR is not run again. Chunks are
        embedded anew (a passage's vector includes its document's title, made from the path), page
        facts and labels are taken from the new path. The twin's failed pages are failed here too (read
        with `retry_failed`)."""
        from .sources import page_label

        wanted = set(range(1, twin["n_pages"] + 1)) if only is None else only
        failed = {n: r for n, r in self.earlier_failures.get(twin["id"], []) if n in wanted}
        stored = [r for r in self.idx.stored_pages(twin["id"]) if r["page_no"] in wanted]
        if {r["page_no"] for r in stored} != wanted - failed.keys():  # the twin lacks a page: read this file
            return self.schedule(doc_id, file, kind, title, sorted(wanted))
        tasks = [PageTask(doc_id, file, kind, n) for n in sorted(failed)] if self.options.retry_failed else []
        for n, reason in failed.items() if not tasks else ():
            self.idx.record_failed_page(doc_id, n, reason)
        self.titles[doc_id], self.paths[doc_id] = title, db_path(file)
        self.remaining[doc_id] = len(stored) + len(tasks)
        for row in stored:
            task = PageTask(doc_id, file, kind, row["page_no"])
            self.copies.append(PageResult(
                task, words=row["words"], width=row["width"], height=row["height"], source=row["source"],
                rotation=row["rotation"], lang=row["lang"], copied=True,
                label=page_label(Path(file), row["page_no"]) if kind == "pdf" else ""))
        if not stored and not tasks:
            self.finish(doc_id)
        return tasks

    def schedule(self, doc_id: int, file: str, kind: str, title: str, page_nos) -> list[PageTask]:
        tasks = [PageTask(doc_id, file, kind, n) for n in page_nos]
        self.titles[doc_id], self.paths[doc_id] = title, db_path(file)
        self.remaining[doc_id] = len(tasks)
        if not tasks:
            self.finish(doc_id)
        return tasks

    def prune(self, paths: list[Path]) -> None:
        """Drop the documents under `paths` whose file is gone; a file that cannot be checked (a folder
        on its way unreadable) is kept. Documents elsewhere (another folder, an unmounted disk) stay."""
        roots = [db_path(p.resolve()) for p in paths]
        for doc in self.idx.documents():
            if any(is_under(doc["path"], r) for r in roots) and presence(fs_path(doc["path"])) is False:
                self.idx.remove_document(doc["id"])
                self.report.pruned += 1
        for path, _, _ in self.idx.skipped():
            if any(is_under(path, r) for r in roots) and not os.path.lexists(fs_path(path)):
                self.idx.clear_skip(path)
