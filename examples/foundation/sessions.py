"""SessionAgent: one user session per object, its metadata also in `foundation_sessions`."""

from __future__ import annotations

import json
from typing import Any

from solo import UserError, rpc
from solo.examples.foundation.agent import FoundationAgent, diverged

MAX_ID_CHARS = 256

_COLUMNS = "user_id, tenant, attributes, started_ms, last_seen_ms, ended_ms"


class SessionAgent(FoundationAgent):
    """A session: who (user, tenant), when (started, last seen, ended) and free-form attributes."""

    migrations = [
        "CREATE TABLE session (id INTEGER PRIMARY KEY CHECK (id = 0), user_id TEXT NOT NULL, tenant TEXT NOT NULL,"
        " attributes TEXT NOT NULL, started_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL, ended_ms INTEGER)",
    ]
    local_tables = ("session",)

    def rebuild(self, generation: int) -> int:
        rows = self.shared.query(
            f"SELECT {_COLUMNS} FROM foundation_sessions WHERE session_id = :session_id AND generation = :generation",
            session_id=self.name,
            generation=generation,
        )
        self.sql.executemany(
            f"INSERT INTO session (id, {_COLUMNS}) VALUES"
            " (0, :user_id, :tenant, :attributes, :started_ms, :last_seen_ms, :ended_ms)",
            rows,
        )
        return len(rows)

    @rpc
    def start(self, user_id: str, tenant: str, attributes: dict[str, Any] | None = None) -> dict:
        """Open the session for a user of a tenant."""
        for field, value in (("user_id", user_id), ("tenant", tenant)):
            if not value.strip() or len(value) > MAX_ID_CHARS:
                raise UserError(f"{field} must be 1 to {MAX_ID_CHARS} characters", status=422, code="invalid_session")
        if self._row() is not None:
            raise UserError("the session has already started", status=409, code="session_exists")
        now = self.ctx.now_ms()
        self.sql.execute(
            f"INSERT INTO session (id, {_COLUMNS}) VALUES (0, ?, ?, ?, ?, ?, NULL)",
            (user_id, tenant, json.dumps(attributes or {}), now, now),
        )
        self.audit("session_started", actor=user_id, tenant=tenant)
        return self._mirror(new=True)

    @rpc
    def touch(self, attributes: dict[str, Any] | None = None) -> dict:
        """Record activity now; merge `attributes` into the session's."""
        row = self._open_row()
        merged = {**json.loads(row["attributes"]), **(attributes or {})}
        self.sql.execute(
            "UPDATE session SET attributes = ?, last_seen_ms = ? WHERE id = 0", (json.dumps(merged), self.ctx.now_ms())
        )
        return self._mirror()

    @rpc
    def end(self) -> dict:
        """Close the session; it cannot be touched afterwards."""
        row = self._open_row()
        now = self.ctx.now_ms()
        self.sql.execute("UPDATE session SET last_seen_ms = ?, ended_ms = ? WHERE id = 0", (now, now))
        self.audit("session_ended", actor=row["user_id"], duration_ms=now - row["started_ms"])
        return self._mirror()

    @rpc
    def get(self) -> dict | None:
        """The session, or None before start()."""
        row = self._row()
        return _session(row) if row is not None else None

    def _row(self) -> Any:
        return self.sql.execute(f"SELECT {_COLUMNS} FROM session WHERE id = 0").fetchone()

    def _open_row(self) -> Any:
        row = self._row()
        if row is None:
            raise UserError("the session has not started", status=404, code="no_session")
        if row["ended_ms"] is not None:
            raise UserError("the session has ended", status=409, code="session_ended")
        return row

    def _mirror(self, *, new: bool = False) -> dict:
        """Write the session's row to the shared table as it now is (a `new` one must not be there yet)."""
        row = dict(self._row())
        on_conflict = (
            "DO NOTHING"
            if new
            else "DO UPDATE SET attributes = excluded.attributes,"
            " last_seen_ms = excluded.last_seen_ms, ended_ms = excluded.ended_ms"
        )
        written = self.shared.execute(
            f"INSERT INTO foundation_sessions (session_id, generation, {_COLUMNS}) VALUES"
            " (:session_id, :generation, :user_id, :tenant, :attributes, :started_ms, :last_seen_ms, :ended_ms)"
            f" ON CONFLICT (session_id, generation) {on_conflict}",
            session_id=self.name,
            generation=self.generation,
            **row,
        )
        if not written:
            raise diverged("this session")
        return _session(row)


def _session(row: Any) -> dict:
    return {**dict(row), "attributes": json.loads(row["attributes"])}
