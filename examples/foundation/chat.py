"""ChatAgent: one conversation per object, every message also in `foundation_chat_history`."""

from __future__ import annotations

from typing import Literal

from solo import UserError, rpc
from solo.examples.foundation.agent import FoundationAgent, diverged

Role = Literal["user", "assistant", "system"]
MAX_CONTENT_CHARS = 32_000
MAX_PAGE = 500


class ChatAgent(FoundationAgent):
    """A conversation: the object's name is the session id of its rows in the shared history."""

    migrations = [
        "CREATE TABLE messages (seq INTEGER PRIMARY KEY, role TEXT NOT NULL, content TEXT NOT NULL,"
        " created_ms INTEGER NOT NULL)",
    ]
    local_tables = ("messages",)

    def rebuild(self, generation: int) -> int:
        rows = self.shared.query(
            "SELECT seq, role, content, created_ms FROM foundation_chat_history"
            " WHERE session_id = :session_id AND generation = :generation ORDER BY seq",
            session_id=self.name,
            generation=generation,
        )
        self.sql.executemany(
            "INSERT INTO messages (seq, role, content, created_ms) VALUES (:seq, :role, :content, :created_ms)", rows
        )
        return len(rows)

    @rpc
    def send(self, role: Role, content: str) -> dict:
        """Append a message to the conversation; returns it with its sequence number."""
        if not content.strip():
            raise UserError("content must not be empty", status=422, code="invalid_message")
        if len(content) > MAX_CONTENT_CHARS:
            raise UserError(
                f"content is longer than {MAX_CONTENT_CHARS} characters", status=422, code="invalid_message"
            )
        now = self.ctx.now_ms()
        seq = self.sql.execute(
            "INSERT INTO messages (role, content, created_ms) VALUES (?, ?, ?)", (role, content, now)
        ).lastrowid
        inserted = self.shared.execute(
            "INSERT INTO foundation_chat_history (session_id, generation, seq, role, content, created_ms)"
            " VALUES (:session_id, :generation, :seq, :role, :content, :created_ms)"
            " ON CONFLICT (session_id, generation, seq) DO NOTHING",
            session_id=self.name,
            generation=self.generation,
            seq=seq,
            role=role,
            content=content,
            created_ms=now,
        )
        if not inserted:
            raise diverged(f"message {seq}")
        return {"seq": seq, "role": role, "content": content, "created_ms": now}

    @rpc
    def messages(self, limit: int = 50, before: int | None = None) -> list[dict]:
        """The latest `limit` messages (before sequence number `before`, if given), oldest first."""
        if not 1 <= limit <= MAX_PAGE:
            raise UserError(f"limit must be 1 to {MAX_PAGE}", status=422, code="invalid_limit")
        rows = self.sql.execute(
            "SELECT seq, role, content, created_ms FROM messages WHERE seq < ? ORDER BY seq DESC LIMIT ?",
            (before if before is not None else 2**63 - 1, limit),
        ).fetchall()
        return [dict(row) for row in reversed(rows)]
