"""Conversations persisted in SQLite beside the index (`<index>/conversations.db`).

A separate file from index.db, so chatting never waits on a running build's write lock.
An index on a read-only mount (a backup, a shared folder) keeps its conversations in the
user's data folder instead: `$XDG_DATA_HOME/pagerag/conversations/<hash of the index path>.db`.
Each turn keeps the question, the query actually retrieved, the answer, the pages shown
(with their citation numbers), the model and the timings.
"""
from __future__ import annotations

import errno
import functools
import hashlib
import json
import os
import secrets
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from index.errors import BadArgument, NotIndexed, PageragError

DB_NAME = "conversations.db"
SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    title TEXT NOT NULL                  -- the first question
);
CREATE TABLE IF NOT EXISTS turns (
    id INTEGER PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    ord INTEGER NOT NULL,
    question TEXT NOT NULL,
    query TEXT NOT NULL,                 -- what was retrieved (follow-ups fold the previous question in)
    answer TEXT NOT NULL,
    sources TEXT NOT NULL,               -- JSON [{n, path, page, image, score}]
    removed_citations TEXT NOT NULL,     -- JSON [n, ...] cited but not shown to the model
    abstained INTEGER NOT NULL,
    backend TEXT,
    model TEXT,
    at TEXT NOT NULL,
    retrieval_seconds REAL,
    generation_seconds REAL,
    UNIQUE (conversation_id, ord)
);
"""


@dataclass
class Turn:
    question: str
    query: str
    answer: str
    sources: list[dict] = field(default_factory=list)
    removed_citations: list[int] = field(default_factory=list)
    abstained: bool = False
    backend: str | None = None
    model: str | None = None
    at: str = ""
    retrieval_seconds: float | None = None
    generation_seconds: float | None = None


@dataclass
class Conversation:
    id: str
    created: str
    updated: str
    title: str
    turns: list[Turn] = field(default_factory=list)


def store_path(folder: Path | str) -> Path:
    """Where the conversations of the index at `folder` live: beside it, or in the user's data
    folder when the index cannot be written (e.g. /mnt/backup/idx -> ~/.local/share/pagerag/conversations/3f2a….db)."""
    folder = Path(folder)
    beside = folder / DB_NAME
    if os.access(folder, os.W_OK) and (not beside.exists() or os.access(beside, os.W_OK)):
        return beside
    data = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    key = hashlib.sha256(os.fsencode(folder.resolve())).hexdigest()[:16]
    path = data / "pagerag" / "conversations" / f"{key}.db"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not os.access(path.parent, os.W_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
    except OSError as e:  # a read-only home too (a sandbox, a service account): say where, and what to set
        raise ConversationsUnavailable(
            f"the index at {folder} is read-only, so its conversations are kept in {path.parent}, which cannot be "
            f"written either ({e.strerror}); set XDG_DATA_HOME to a folder you can write (the index itself is "
            "fine, and `pagerag search` works)") from None
    return path


LOCK_WAIT = 10.0  # seconds to wait for another process's write to conversations.db
QUICK_CHECK_BELOW = 32 << 20  # bytes: a conversations file up to this size is checked on open (milliseconds)


class ConversationsUnavailable(PageragError):
    """conversations.db cannot be used (locked by another process, damaged, not a file); the index is fine."""


class ConversationDamaged(ConversationsUnavailable):
    """A stored conversation's rows hold what pagerag never writes (changed by hand or by another program)."""


def _unavailable(path: Path, error: sqlite3.Error) -> ConversationsUnavailable:
    text = str(error)
    if "locked" in text or "busy" in text:
        return ConversationsUnavailable(
            f"the conversations file {path} is locked by another process (waited {LOCK_WAIT:g} s): try again when "
            "it is done (another `pagerag ask`, `chat` or `serve` saving an answer)")
    if path.is_dir():
        return ConversationsUnavailable(f"the conversations file {path} is a folder: move it away, and pagerag makes "
                                        "a new file there (the index itself is fine)")
    if "full" in text:
        return ConversationsUnavailable(f"the disk holding {path} is full; free some space (nothing was saved)")
    if "readonly" in text or "unable to open" in text:
        return ConversationsUnavailable(f"cannot write the conversations file {path} ({text}): check its "
                                        "permissions, or the folder's")
    return ConversationsUnavailable(
        f"the conversations file {path} is damaged ({text}): move it aside (`mv {path} {path}.damaged`) to "
        "start afresh; the index itself is fine")


def _guarded(method):
    """SQLite errors of a ConversationStore method -> ConversationsUnavailable saying what to do."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as e:
            raise _unavailable(self.path, e) from None
    return wrapper


def _turn_problem(r: tuple) -> str | None:
    """What is wrong with a turns row (question, query, answer, sources, removed_citations, abstained, backend,
    model, at, retrieval_seconds, generation_seconds), or None."""
    names = ("question", "query", "answer")
    for name, value in zip(names, r[:3]):
        if not isinstance(value, str):
            return f"{name} is not text"
    try:
        sources, removed = json.loads(r[3]), json.loads(r[4])
    except (TypeError, ValueError, RecursionError):
        return "sources or removed_citations is not JSON"
    if not isinstance(sources, list) or not all(
            isinstance(s, dict) and _is_int(s.get("n")) and isinstance(s.get("path"), str) and _is_int(s.get("page"))
            for s in sources):
        return "sources is not a list of {n, path, page}"
    if not isinstance(removed, list) or not all(_is_int(n) for n in removed):
        return "removed_citations is not a list of numbers"
    if not all(v is None or isinstance(v, str) for v in r[6:9]):
        return "backend, model or time is not text"
    if not all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in r[9:11]):
        return "a duration is not a number"
    return None


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class ConversationStore:
    def __init__(self, folder: Path | str):
        self.path = store_path(folder)
        try:
            self.db = sqlite3.connect(self.path, timeout=LOCK_WAIT, isolation_level=None)
            self._open()
        except sqlite3.Error as e:
            raise _unavailable(self.path, e) from None

    def _open(self) -> None:
        """Set the file up; a damaged one is found here (quick_check), before a model spends time on an answer."""
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        if self.path.stat().st_size <= QUICK_CHECK_BELOW:
            problem = self.db.execute("PRAGMA quick_check").fetchone()[0]
            if problem != "ok":
                raise sqlite3.DatabaseError(f"quick_check: {problem}")
        self.db.executescript(SCHEMA)

    @_guarded
    def new(self, title: str) -> str:
        cid = secrets.token_hex(4)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        self.db.execute("INSERT INTO conversations VALUES (?, ?, ?, ?)", (cid, stamp, stamp, title[:200]))
        return cid

    @_guarded
    def start(self, title: str, turn: Turn) -> tuple[str, int]:
        """A new conversation holding `turn`, in one transaction (never one without its first turn):
        (its id, 1)."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            cid = self.new(title)
            return cid, self._insert_turn(cid, turn)

    @_guarded
    def last_id(self) -> str | None:
        row = self.db.execute("SELECT id FROM conversations ORDER BY updated DESC, rowid DESC LIMIT 1").fetchone()
        return row[0] if row else None

    @_guarded
    def resolve(self, cid: str) -> str:
        """A full id from an id or a unique prefix of one (compared literally: `%` and `_` are no wildcards)."""
        cid = str(cid).strip()
        if not cid:
            raise BadArgument("an empty conversation id was given; see `pagerag conversations` for the ids")
        rows = [r[0] for r in self.db.execute(
            "SELECT id FROM conversations WHERE substr(id, 1, length(?)) = ?", (cid, cid))]
        if len(rows) != 1:
            raise NotIndexed(f"no conversation '{cid}'" if not rows else f"'{cid}' matches {len(rows)} conversations"
                             + "; see `pagerag conversations`")
        return rows[0]

    @_guarded
    def add_turn(self, cid: str, turn: Turn) -> int:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            return self._insert_turn(cid, turn)

    def _insert_turn(self, cid: str, turn: Turn) -> int:
        """Inside a write transaction: append `turn` to conversation `cid`; its number."""
        ord_ = self.db.execute("SELECT count(*) FROM turns WHERE conversation_id = ?", (cid,)).fetchone()[0] + 1
        turn.at = turn.at or time.strftime("%Y-%m-%d %H:%M:%S")
        self.db.execute(
            "INSERT INTO turns (conversation_id, ord, question, query, answer, sources, removed_citations,"
            " abstained, backend, model, at, retrieval_seconds, generation_seconds)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (cid, ord_, turn.question, turn.query, turn.answer, json.dumps(turn.sources),
             json.dumps(turn.removed_citations), int(turn.abstained), turn.backend, turn.model, turn.at,
             turn.retrieval_seconds, turn.generation_seconds))
        self.db.execute("UPDATE conversations SET updated = ? WHERE id = ?", (turn.at, cid))
        return ord_

    @_guarded
    def get(self, cid: str) -> Conversation:
        cid = self.resolve(cid)
        row = self.db.execute("SELECT id, created, updated, title FROM conversations WHERE id = ?", (cid,)).fetchone()
        conv = Conversation(*row)
        for r in self.db.execute(
                "SELECT question, query, answer, sources, removed_citations, abstained, backend, model, at,"
                " retrieval_seconds, generation_seconds FROM turns WHERE conversation_id = ? ORDER BY ord", (cid,)):
            conv.turns.append(self._turn(cid, len(conv.turns) + 1, r))
        return conv

    def _turn(self, cid: str, n: int, r: tuple) -> Turn:
        """A stored turn, its columns checked: a row changed by hand or by another program is named as damaged
        rather than failing later wherever a value is used."""
        problem = _turn_problem(r)
        if problem:
            raise ConversationDamaged(
                f"conversation {cid} in {self.path} is damaged (turn {n}: {problem}): start a new conversation "
                f"(without -c/--cid), or move the file aside (`mv {self.path} {self.path}.damaged`); the index "
                "itself is fine")
        return Turn(r[0], r[1], r[2], json.loads(r[3]), json.loads(r[4]), bool(r[5]), *r[6:])

    @_guarded
    def list(self, limit: int = 50) -> list[tuple[Conversation, int]]:
        rows = self.db.execute(
            "SELECT c.id, c.created, c.updated, c.title, count(t.id) FROM conversations c"
            " LEFT JOIN turns t ON t.conversation_id = c.id GROUP BY c.id ORDER BY c.updated DESC, c.rowid DESC"
            " LIMIT ?", (limit,))
        return [(Conversation(*r[:4]), r[4]) for r in rows]
