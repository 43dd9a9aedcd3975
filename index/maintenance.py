"""Removing documents, and checking (or repairing) an index: `pagerag index remove|verify`."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .errors import BadArgument, NotIndexed
from .lock import WriteLock, writer_of
from .given_paths import not_indexed_hint, path_key, under_key
from .stored_paths import is_under, path_forms, shown
from .location import quick_check
from .store import Index
from .vector_values import digest
from .vectors import VectorStore


@dataclass
class Removed:
    target: str  # as given, resolved (stored form)
    documents: list[tuple[str, int]]  # (path, pages removed)
    is_folder: bool


def remove_paths(folder: Path, paths: list[Path | str]) -> list[Removed]:
    """Remove every document whose path is one of `paths` or lies under one.

    Every path must match at least one indexed document (or skip record), or nothing is
    removed: a typo never turns into a partial removal. An empty path is refused; it
    would mean the current folder, which is rarely what was meant.
    """
    for p in paths:
        if not str(p).strip():
            raise BadArgument("an empty path was given to remove; it would match every indexed file under the "
                              "current folder. Name the file or folder to remove (`pagerag index status` lists them)")
    with WriteLock(folder, create=False):
        idx = Index.open(folder, check=True)
        try:
            docs, skips = idx.documents(), idx.skipped()

            def matches(target: str, under=is_under) -> bool:
                return any(under(d["path"], target) for d in docs) or any(under(s[0], target) for s in skips)

            # a path as written, else with its links resolved: removing a link never removes its target; a
            # path in another Unicode normalisation than stored (typed on macOS) matches by key, if not as it is
            targets = [next((t for t in path_forms(p) if matches(t)), None) or
                       next((t for t in path_forms(p) if matches(t, under_key)), path_forms(p)[-1]) for p in paths]
            unmatched = [t for t in targets if not matches(t, under_key)]
            if unmatched:
                stored = [d["path"] for d in docs]
                raise NotIndexed("nothing indexed under " + "; nor under ".join(
                    f"{shown(t)}: {not_indexed_hint(t, stored)}" for t in unmatched) + "; nothing was removed")
            result = []
            for t in targets:
                under = is_under if matches(t) else under_key
                removed = Removed(t, [], is_folder=not any(path_key(d["path"]) == path_key(t) for d in docs))
                for doc in docs:
                    if under(doc["path"], t) and idx.document(doc["path"]) is not None:
                        removed.documents.append((doc["path"], idx.remove_document(doc["id"])))
                for path, _, _ in skips:
                    if under(path, t):
                        idx.clear_skip(path)
                result.append(removed)
            idx.save_vectors()
        finally:
            idx.close()
    return result


# -- verify ---------------------------------------------------------------------------
@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class VerifyReport:
    index: str
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def add(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append(Check(name, ok, detail))


def verify(folder: Path, repair: bool = False) -> VerifyReport:
    """Check that SQLite is sound and that FTS5, the chunk rows and FAISS agree in ids and content.

    With `repair`, rebuild what is derivable from the page rows (FTS5, the vector stamp,
    the FAISS file) under the write lock, then check again. Pages are never re-read.
    """
    if repair:
        with WriteLock(folder, create=False):
            idx = Index.open(folder)
            try:
                done = _repair(idx)
            finally:
                idx.close()
        report = verify(folder)
        report.repaired = done
        return report
    idx = Index.open(folder)
    report = VerifyReport(str(idx.folder))
    try:
        _verify(idx, report)
    finally:
        idx.close()
    return report


def _verify(idx: Index, report: VerifyReport) -> None:
    import sqlite3

    try:
        problems = quick_check(idx.db)
    except sqlite3.DatabaseError as e:
        problems = [str(e)]
    report.add("sqlite", not problems, "quick_check: ok" if not problems else
               "quick_check found damage: " + "; ".join(problems[:3]) + " (restore a backup or rebuild into a new folder)")
    if problems:
        return
    # one snapshot for every check: a build committing meanwhile must not look like a mismatch
    with idx.snapshot():
        _verify_rows(idx, report)
    writer = writer_of(idx.folder)
    if writer:
        report.notes.append(f"a build is writing this index ({writer}): this checked the state committed "
                            "when the check began")


def _verify_rows(idx: Index, report: VerifyReport) -> None:
    with idx.snapshot():
        one = lambda sql: idx.db.execute(sql).fetchone()[0]  # noqa: E731
        n_pages, n_fts, n_chunks = one("SELECT count(*) FROM pages"), one("SELECT count(*) FROM pages_fts"), \
            one("SELECT count(*) FROM chunks")
        fts_extra = one("SELECT count(*) FROM (SELECT rowid FROM pages_fts EXCEPT SELECT id FROM pages)")
        fts_missing = one("SELECT count(*) FROM (SELECT id FROM pages EXCEPT SELECT rowid FROM pages_fts)")
        fk = idx.db.execute("PRAGMA foreign_key_check").fetchall()
        no_chunk = one("SELECT count(*) FROM pages WHERE id NOT IN (SELECT page_id FROM chunks)")
        stamp = idx.vector_stamp()
        dim = int(idx.meta.get("embed_dim", 0) or 0)
        bad_len = one(f"SELECT count(*) FROM chunks WHERE length(vector) != {2 * dim}") if dim else 0  # float16
        ids, vecs = idx.all_vectors() if dim else ([], None)
        ids = ids.tolist() if dim else ids
        incomplete = one("SELECT count(*) FROM documents WHERE status != 'done'")
        partial = idx.partial_documents()
        # a page both stored and recorded as failed, or failed beyond its file's pages: never written so
        overlap = one("SELECT count(*) FROM failed_pages f JOIN documents d ON d.id = f.doc_id WHERE f.page_no < 1 "
                      "OR f.page_no > d.n_pages OR EXISTS (SELECT 1 FROM pages p WHERE p.doc_id = f.doc_id AND "
                      "p.page_no = f.page_no)") if idx.failed_pages() else 0
    fts_ok = n_fts == n_pages and not fts_extra and not fts_missing
    report.add("full-text", fts_ok, f"{n_fts} full-text rows for {n_pages} pages" + (
        "" if fts_ok else f": {fts_missing} page(s) missing, {fts_extra} row(s) for no page (run `index verify --repair`)"))
    rows_ok = not fk and not no_chunk and not bad_len and not overlap
    report.add("rows", rows_ok, f"{n_chunks} passages on {n_pages} pages" + ("" if rows_ok else
               f": {len(fk)} row(s) pointing at nothing, {no_chunk} page(s) without a passage, "
               f"{bad_len} vector(s) of the wrong size, {overlap} failed page(s) that are also indexed or not "
               "in their file"))
    if incomplete:
        report.notes.append(f"{incomplete} document(s) were interrupted mid-build; `pagerag index build` resumes them")
    if partial:  # bad input, not damage
        failed = sum(len(f) for _, _, f in partial)
        report.notes.append(f"{len(partial)} document(s) are partly indexed: {failed} page(s) could not be read "
                            "(`pagerag index status` lists them; `pagerag index build --retry-failed` reads them again)")
    if not dim:
        report.notes.append("no vectors yet")
        return
    db_sum = digest(ids, vecs) if ids else 0
    report.add("checksum", db_sum == stamp["sum"], "the passages' (id, vector) checksum matches the one recorded"
               if db_sum == stamp["sum"] else "the recorded vector checksum does not match the passages "
               "(run `index verify --repair`)")
    _verify_faiss(idx, report, set(ids), db_sum, stamp, dim)


def _verify_faiss(idx: Index, report: VerifyReport, db_ids: set, db_sum: int, stamp: dict, dim: int) -> None:
    on_disk = VectorStore(idx.folder, dim)
    have = on_disk.stamp
    if not on_disk.path.exists():
        report.notes.append("there is no FAISS file yet: search builds the vectors from SQLite in memory")
    elif on_disk.load_error:
        report.notes.append(f"the FAISS file is {on_disk.load_error}: search rebuilds it from SQLite; "
                            "`index verify --repair` rewrites it")
    elif have is None:
        report.notes.append("the FAISS file has no valid stamp (an interrupted save, or a copy): search rebuilds "
                            "it from SQLite; `index verify --repair` rewrites it")
    elif have["uuid"] != stamp["uuid"] or have["gen"] > stamp["gen"]:
        report.notes.append("the FAISS file belongs to another state of this database (a restored backup, or "
                            "a build saved it after this check began): search rebuilds it from SQLite if it "
                            "must; `index verify --repair` rewrites it")
    else:
        contents = on_disk.contents()
        if contents is not None:
            file_sum = digest(*contents)
            report.add("faiss file", file_sum == have["sum"], f"the FAISS file holds {len(on_disk)} vectors "
                       "matching its stamp" if file_sum == have["sum"] else
                       "the FAISS file's vectors do not match its own stamp: it was changed outside pagerag")
        if have["gen"] == stamp["gen"]:
            current = set(on_disk.ids().tolist()) == db_ids and have["sum"] == db_sum
            report.add("faiss current", current, "the FAISS file is current (same ids and content as SQLite)"
                       if current else "the FAISS file claims to be current but differs from SQLite")
        else:
            report.notes.append(f"the FAISS file is {stamp['gen'] - have['gen']} change(s) behind SQLite (a "
                                "build is running or was interrupted): search brings it up to date in memory; the "
                                "next build or `index verify --repair` rewrites it")
    # what search would use: the file reconciled in memory
    vs = idx.vectors
    contents = vs.contents()
    same_ids = set(vs.ids().tolist()) == db_ids
    same = same_ids and (contents is None or digest(*contents) == db_sum)
    report.add("search vectors", same, f"search uses {len(vs)} vectors, the same ids and content as SQLite" if same
               else "the vectors search would use differ from SQLite (a bug: please report it)")


def _repair(idx: Index) -> list[str]:
    """Rebuild FTS5, the vector stamp and FAISS from the page and passage rows."""
    done = []
    with idx.transaction():
        idx.db.execute("DELETE FROM pages_fts")
        idx.db.execute("INSERT INTO pages_fts (rowid, title, text, caption) SELECT p.id, d.title, p.text, "
                       "coalesce(p.caption, '') FROM pages p JOIN documents d ON d.id = p.doc_id")
        stamp = idx.vector_stamp()
        idx.set_meta(vectors_gen=stamp["gen"] + 1,
                     vectors_sum=digest(*idx.all_vectors()) if "embed_dim" in idx.meta else 0)
    done.append("full-text rows rebuilt from the pages")
    if "embed_dim" in idx.meta:
        vs = idx.vectors  # loaded and reconciled; then rebuilt outright, whatever the file said
        vs.reset()
        idx.reconcile()
        idx.fit_vectors()
        vs.save()
        done.append(f"FAISS file rewritten from SQLite ({len(vs)} vectors)")
    return done
