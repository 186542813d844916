"""Foundation agents over HTTP: business rows in the shared database, rebuild (pattern A), reset (pattern B), export."""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy as sa

from solo.objects.state.schema import make_engine
from tests.examples.conftest import CallFailed


@pytest.fixture(scope="module")
def shared_db(postgres_url):
    engine = make_engine(postgres_url)
    yield engine
    engine.dispose()


def shared_rows(engine: sa.Engine, sql: str, **params) -> list[dict]:
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(sa.text(sql), params).mappings()]


def chat_history(engine: sa.Engine, session_id: str) -> list[tuple[int, int, str]]:
    rows = shared_rows(
        engine,
        "SELECT generation, seq, content FROM foundation_chat_history WHERE session_id = :s ORDER BY generation, seq",
        s=session_id,
    )
    return [(r["generation"], r["seq"], r["content"]) for r in rows]


def failure(call) -> tuple[int, str]:
    with pytest.raises(CallFailed) as caught:
        call()
    return caught.value.status, caught.value.error["code"]


def contents(messages: list[dict]) -> list[str]:
    return [m["content"] for m in messages]


def test_chat_messages_commit_to_the_shared_history_with_the_object(api, shared_db, run_id):
    chat = f"ChatAgent/chat-{run_id}"
    for text in ("hello", "hi, how can I help?", "export my data"):
        api.call(chat, "send", role="user", content=text)

    assert contents(api.call(chat, "messages")) == ["hello", "hi, how can I help?", "export my data"]
    assert chat_history(shared_db, f"chat-{run_id}") == [
        (0, 1, "hello"),
        (0, 2, "hi, how can I help?"),
        (0, 3, "export my data"),
    ]
    # Paging: the latest two, then the one before them.
    assert contents(api.call(chat, "messages", limit=2)) == ["hi, how can I help?", "export my data"]
    assert contents(api.call(chat, "messages", limit=2, before=2)) == ["hello"]


def test_bad_chat_input_is_refused_and_changes_nothing(api, shared_db, run_id):
    chat = f"ChatAgent/bad-{run_id}"
    api.call(chat, "send", role="user", content="first")

    assert failure(lambda: api.call(chat, "send", role="robot", content="x")) == (422, "invalid_arguments")
    assert failure(lambda: api.call(chat, "send", role="user", content="   ")) == (422, "invalid_message")
    assert failure(lambda: api.call(chat, "send", role="user", content="x" * 32_001)) == (422, "invalid_message")
    assert failure(lambda: api.call(chat, "messages", limit=0)) == (422, "invalid_limit")
    assert failure(lambda: api.call(chat, "reset", reason=" ")) == (422, "invalid_reason")
    assert failure(lambda: api.call(chat, "reset")) == (422, "invalid_arguments")

    assert contents(api.call(chat, "messages")) == ["first"]
    assert chat_history(shared_db, f"bad-{run_id}") == [(0, 1, "first")]
    assert api.call(chat, "status")["generation"] == 0


def test_a_deleted_chat_rebuilds_its_history_from_the_shared_database(api, solo, run_id):
    chat = f"ChatAgent/lost-{run_id}"
    for text in ("one", "two", "three"):
        api.call(chat, "send", role="user", content=text)

    # Given the object's own state is deleted (the "delete instance" option)...
    assert api.http.delete(f"/v1/objects/{chat}").json() == {"deleted": True}
    assert api.http.get(f"/v1/objects/{chat}/export").status_code == 404

    # ...its next activation copies the history back from the shared database (pattern A).
    assert contents(api.call(chat, "messages")) == ["one", "two", "three"]
    assert api.call(chat, "status") == {"generation": 0, "rows": {"messages": 3}, "rebuilt_rows": 3}
    assert api.call(chat, "send", role="assistant", content="four")["seq"] == 4
    assert api.call(chat, "audit_trail")[0]["action"] == "rebuilt"

    # After a crash the object's state survives, so nothing is rebuilt; the in-memory count is gone.
    solo.restart_workers()
    assert contents(api.call(chat, "messages")) == ["one", "two", "three", "four"]
    assert api.call(chat, "status")["rebuilt_rows"] == 0


def test_a_reset_chat_starts_a_new_generation_that_a_rebuild_does_not_undo(api, shared_db, run_id):
    name = f"reset-{run_id}"
    chat = f"ChatAgent/{name}"
    api.call(chat, "send", role="user", content="secret")
    api.call(chat, "send", role="user", content="more secret")

    result = api.call(chat, "reset", reason="erasure request", actor="ops@example.com")
    assert result == {"generation": 1, "cleared": {"messages": 2}}
    assert api.call(chat, "messages") == []
    api.call(chat, "send", role="user", content="fresh start")

    # Even after the object's state is lost, the rebuild reads only the current generation.
    api.http.delete(f"/v1/objects/{chat}")
    assert contents(api.call(chat, "messages")) == ["fresh start"]
    assert api.call(chat, "status")["generation"] == 1

    # The shared database keeps every generation and the reset is in the audit log.
    assert chat_history(shared_db, name) == [(0, 1, "secret"), (0, 2, "more secret"), (1, 1, "fresh start")]
    reset = next(entry for entry in api.call(chat, "audit_trail") if entry["action"] == "reset")
    assert reset["actor"] == "ops@example.com"
    assert reset["detail"] == {"reason": "erasure request", "generation": 1, "cleared": {"messages": 2}}

    # A new name is a new object (the "new id" option): it starts empty.
    assert api.call(f"ChatAgent/{name}-v2", "messages") == []


def test_a_chat_restored_behind_the_shared_history_refuses_to_overwrite_it(api, shared_db, run_id):
    name = f"restored-{run_id}"
    chat = f"ChatAgent/{name}"
    api.call(chat, "send", role="user", content="kept")
    before_second = api.http.get(f"/v1/objects/{chat}").json()["seq"]
    api.call(chat, "send", role="user", content="only in the shared history now")

    # Given the object's state is restored to before the second message...
    assert api.http.post(f"/v1/objects/{chat}/restore", json={"seq": before_second}).status_code == 200
    assert contents(api.call(chat, "messages")) == ["kept"]

    # ...its next message would reuse seq 2: refused, and the shared row is untouched.
    assert failure(lambda: api.call(chat, "send", role="user", content="clobber")) == (409, "state_diverged")
    assert chat_history(shared_db, name) == [(0, 1, "kept"), (0, 2, "only in the shared history now")]

    # Deleting the object rebuilds it from the shared database, and it carries on.
    api.http.delete(f"/v1/objects/{chat}")
    assert api.call(chat, "send", role="user", content="third")["seq"] == 3
    assert contents(api.call(chat, "messages")) == ["kept", "only in the shared history now", "third"]


def test_chat_state_exports_as_json_and_as_a_sqlite_file(api, run_id, tmp_path):
    chat = f"ChatAgent/export-{run_id}"
    api.call(chat, "send", role="system", content="be brief")
    api.call(chat, "send", role="user", content="hi")

    state = api.call(chat, "export_state")
    assert state["class"] == "ChatAgent" and state["name"] == f"export-{run_id}" and state["generation"] == 0
    assert [(m["seq"], m["role"], m["content"]) for m in state["tables"]["messages"]] == [
        (1, "system", "be brief"),
        (2, "user", "hi"),
    ]

    response = api.http.get(f"/v1/objects/{chat}/export")
    assert response.status_code == 200
    path = tmp_path / "chat.sqlite"
    path.write_bytes(response.content)
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT seq, role, content FROM messages ORDER BY seq").fetchall()
    assert rows == [(1, "system", "be brief"), (2, "user", "hi")]


def test_task_queue_mirrors_every_transition_and_survives_loss(api, solo, shared_db, run_id):
    name = f"queue-{run_id}"
    tasks = f"TaskAgent/{name}"
    for title in ("build", "test", "deploy"):
        api.call(tasks, "add", title=title, payload={"step": title})

    first = api.call(tasks, "claim_next")
    assert (first["id"], first["status"], first["attempts"], first["payload"]) == (1, "running", 1, {"step": "build"})
    assert api.call(tasks, "complete", task_id=1)["status"] == "done"
    assert api.call(tasks, "claim_next")["id"] == 2
    assert api.call(tasks, "fail", task_id=2, error="flaky", retry=True)["status"] == "queued"
    retried = api.call(tasks, "claim_next")
    assert (retried["id"], retried["attempts"]) == (2, 2)
    assert api.call(tasks, "fail", task_id=2, error="broken")["error"] == "broken"

    # Bad input: a clear error and no change.
    assert failure(lambda: api.call(tasks, "complete", task_id=99)) == (404, "task_not_found")
    assert failure(lambda: api.call(tasks, "complete", task_id=3)) == (409, "task_not_running")
    assert failure(lambda: api.call(tasks, "add", title="")) == (422, "invalid_task")
    assert failure(lambda: api.call(tasks, "list", status="lost")) == (422, "invalid_arguments")

    expected = [(1, "done"), (2, "failed"), (3, "queued")]
    shared = shared_rows(shared_db, "SELECT id, status FROM foundation_tasks WHERE agent = :a ORDER BY id", a=name)
    assert [(r["id"], r["status"]) for r in shared] == expected

    solo.restart_workers()
    assert [(t["id"], t["status"]) for t in api.call(tasks, "list")] == expected

    api.http.delete(f"/v1/objects/{tasks}")
    assert [(t["id"], t["status"], t["attempts"]) for t in api.call(tasks, "list")] == [
        (1, "done", 1),
        (2, "failed", 2),
        (3, "queued", 0),
    ]
    assert [t["title"] for t in api.call(tasks, "list", status="failed")] == ["test"]
    assert api.call(tasks, "claim_next")["id"] == 3
    assert any(entry["action"] == "task_failed" for entry in api.call(tasks, "audit_trail"))


def test_session_lifecycle_with_reset(api, shared_db, run_id):
    name = f"session-{run_id}"
    session = f"SessionAgent/{name}"
    assert failure(lambda: api.call(session, "touch")) == (404, "no_session")
    assert failure(lambda: api.call(session, "start", user_id=" ", tenant="acme")) == (422, "invalid_session")
    assert api.call(session, "get") is None

    started = api.call(session, "start", user_id="u1", tenant="acme", attributes={"ua": "curl"})
    assert failure(lambda: api.call(session, "start", user_id="u2", tenant="acme")) == (409, "session_exists")
    touched = api.call(session, "touch", attributes={"page": "/home"})
    assert touched["attributes"] == {"ua": "curl", "page": "/home"}
    assert touched["last_seen_ms"] >= started["started_ms"]

    ended = api.call(session, "end")
    assert ended["ended_ms"] is not None
    assert failure(lambda: api.call(session, "touch")) == (409, "session_ended")

    # Rebuilt from the shared database, the session is still ended.
    api.http.delete(f"/v1/objects/{session}")
    assert api.call(session, "get") == ended

    # After a reset the same name can hold a new session; the old one stays in the shared table.
    api.call(session, "reset", reason="user logged in again")
    assert api.call(session, "get") is None
    api.call(session, "start", user_id="u1", tenant="acme")
    rows = shared_rows(
        shared_db,
        "SELECT generation, ended_ms FROM foundation_sessions WHERE session_id = :s ORDER BY generation",
        s=name,
    )
    assert [(r["generation"], r["ended_ms"] is not None) for r in rows] == [(0, True), (1, False)]
    actions = [entry["action"] for entry in api.call(session, "audit_trail")]
    assert actions == ["session_started", "reset", "rebuilt", "session_ended", "session_started"]
