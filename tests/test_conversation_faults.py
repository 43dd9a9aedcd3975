"""conversations.db damaged, a folder, or locked: a clear error that names the file (never the index),
a bounded wait, nothing half-saved; real SQLite files damaged or locked by another connection."""
from __future__ import annotations

import sqlite3

import pytest

from openai_helpers import clean_env  # noqa: F401 - no PAGERAG_*/OPENAI_* or proxy variables leak in
from rag.conversations import ConversationStore, ConversationsUnavailable, Turn
from scripted_server import Scripted, ask_with


def test_a_damaged_conversations_file_is_named_and_the_index_is_not_blamed(tmp_path):
    (tmp_path / "conversations.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(ConversationsUnavailable) as info:
        ConversationStore(tmp_path)
    assert "the conversations file" in str(info.value) and "is damaged" in str(info.value)
    assert "the index itself is fine" in str(info.value) and "Rebuild" not in str(info.value)


def test_damage_inside_a_conversations_file_is_found_on_opening(tmp_path):
    store = ConversationStore(tmp_path)
    for i in range(60):
        store.start(f"question {i} " + "x" * 500, Turn(f"q{i}", f"q{i}", "answer " * 100))
    store.db.close()
    with open(tmp_path / "conversations.db", "r+b") as f:
        f.seek(8192)
        f.write(b"\xde\xad" * 4000)
    with pytest.raises(ConversationsUnavailable, match="is damaged"):
        ConversationStore(tmp_path)


def test_a_conversations_folder_is_named(tmp_path):
    (tmp_path / "conversations.db").mkdir()
    with pytest.raises(ConversationsUnavailable, match="is a folder"):
        ConversationStore(tmp_path)


def test_a_locked_conversations_file_waits_a_bounded_time_then_says_locked(tmp_path, monkeypatch):
    import rag.conversations as conversations

    store = ConversationStore(tmp_path)
    monkeypatch.setattr(conversations, "LOCK_WAIT", 0.3)
    store.db.execute("PRAGMA busy_timeout = 300")
    other = sqlite3.connect(tmp_path / "conversations.db", isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(ConversationsUnavailable, match="locked by another process"):
            store.start("q", Turn("q", "q", "a"))
    finally:
        other.execute("ROLLBACK")
    assert store.list() == []  # nothing half-saved: no conversation without its turn
    cid, n = store.start("q", Turn("q", "q", "a"))
    assert n == 1 and store.get(cid).turns[0].answer == "a"


@pytest.mark.slow
def test_ask_with_a_damaged_conversations_file_stops_before_the_model(pdf_index):
    index, _ = pdf_index
    (index / "conversations.db").write_bytes(b"garbage" * 1000)
    with Scripted("normal") as server:
        result = ask_with(server, index)
        assert server.chat_requests == 0
    assert result.exit_code == 1 and "the conversations file" in result.output and "damaged" in result.output
