"""AgentSession: one user's conversation with an assistant, kept across page reloads.

The object is named after the user. It keeps the chat history (in SQL, paged
from the newest message back), the user's UI preferences and the progress of
background syncs (in the key-value store). A browser that reloads the page, or
a new client, calls ``snapshot()`` and finds the session as it was, and so does
the next call after a worker restarts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from solo import DurableObject, UserError, rpc

MAX_MESSAGE_CHARS = 32_000
SNAPSHOT_MESSAGES = 20

Role = Literal["user", "assistant", "system", "tool"]


def _one_of(*choices: str) -> Callable[[Any], bool]:
    return lambda value: value in choices


def _number_between(low: float, high: float) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high


def _boolean(value: Any) -> bool:
    return isinstance(value, bool)


# Each preference, its check and its default; set_preferences accepts nothing else.
PREFERENCES: dict[str, tuple[Callable[[Any], bool], str, Any]] = {
    "theme": (_one_of("light", "dark", "system"), "light, dark or system", "system"),
    "units": (_one_of("imperial", "metric"), "imperial or metric", "imperial"),
    "map_layer": (_one_of("topo", "satellite", "hybrid"), "topo, satellite or hybrid", "topo"),
    "sidebar_open": (_boolean, "true or false", True),
    "font_scale": (_number_between(0.75, 2.0), "a number from 0.75 to 2.0", 1.0),
}


class AgentSession(DurableObject):
    """A user's agent session: chat history, UI preferences and sync progress that survive reloads and restarts."""

    migrations = [
        """
        CREATE TABLE messages (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            client_id TEXT UNIQUE,
            role TEXT NOT NULL,
            content TEXT NOT NULL,
            created_ms INTEGER NOT NULL
        )
        """
    ]

    @rpc
    def append(self, role: Role, content: str, client_id: str | None = None) -> dict[str, Any]:
        """Add a message to the history. A `client_id` already used returns the stored message
        instead of adding it again (a page that re-sends after a reload)."""
        if not content.strip() or len(content) > MAX_MESSAGE_CHARS:
            raise UserError(f"content must have 1 to {MAX_MESSAGE_CHARS} characters", code="invalid_message")
        if client_id is not None:
            if not 1 <= len(client_id) <= 100:
                raise UserError("client_id must have 1 to 100 characters", code="invalid_message")
            known = self.sql.execute(f"SELECT {_COLUMNS} FROM messages WHERE client_id = ?", (client_id,)).fetchone()
            if known is not None:
                return dict(known)
        row = self.sql.execute(
            f"INSERT INTO messages (client_id, role, content, created_ms) VALUES (?, ?, ?, ?) RETURNING {_COLUMNS}",
            (client_id, role, content, self.ctx.now_ms()),
        ).fetchone()
        return dict(row)

    @rpc
    def history(self, before: int | None = None, limit: int = 50) -> dict[str, Any]:
        """Messages older than `before` (a seq; omit for the newest), oldest first, and the `before`
        of the next older page (null at the start of the conversation)."""
        if not 1 <= limit <= 200:
            raise UserError("limit must be from 1 to 200", code="invalid_limit")
        rows = self.sql.execute(
            f"SELECT {_COLUMNS} FROM messages WHERE seq < ? ORDER BY seq DESC LIMIT ?",
            (before if before is not None else 2**63 - 1, limit + 1),
        ).fetchall()
        page = [dict(row) for row in reversed(rows[:limit])]
        return {"messages": page, "before": page[0]["seq"] if len(rows) > limit else None}

    @rpc
    def preferences(self) -> dict[str, Any]:
        """Every preference: the user's choice, or the default."""
        chosen = self.storage.get_many([_PREF + key for key in PREFERENCES])
        return {key: chosen.get(_PREF + key, default) for key, (_, _, default) in PREFERENCES.items()}

    @rpc
    def set_preferences(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Change some preferences (null restores a default); all are checked before any is kept."""
        problems = []
        for key, value in changes.items():
            if key not in PREFERENCES:
                problems.append(f"unknown preference {key!r}")
            elif value is not None and not PREFERENCES[key][0](value):
                problems.append(f"{key} must be {PREFERENCES[key][1]}")
        if problems:
            raise UserError("; ".join(problems), code="invalid_preference")
        self.storage.put_many({_PREF + k: v for k, v in changes.items() if v is not None})
        for key in [k for k, v in changes.items() if v is None]:
            self.storage.delete(_PREF + key)
        return self.preferences()

    @rpc
    def record_sync(self, source: str, done: int, total: int) -> dict[str, Any]:
        """Record how far a background sync of `source` (e.g. "waypoints") has come."""
        if not 1 <= len(source) <= 64:
            raise UserError("source must have 1 to 64 characters", code="invalid_sync")
        if not 0 <= done <= total:
            raise UserError("need 0 <= done <= total", code="invalid_sync")
        progress = {"source": source, "done": done, "total": total, "updated_ms": self.ctx.now_ms()}
        self.storage.put(_SYNC + source, progress)
        return progress

    @rpc
    def snapshot(self) -> dict[str, Any]:
        """What a page needs after a reload: preferences, sync progress and the latest messages."""
        return {
            "user": self.name,
            "preferences": self.preferences(),
            "sync": list(self.storage.list(prefix=_SYNC).values()),
            "recent": self.history(limit=SNAPSHOT_MESSAGES),
            "message_count": self.sql.execute("SELECT count(*) FROM messages").fetchone()[0],
        }


_COLUMNS = "seq, client_id, role, content, created_ms"
_PREF = "pref:"
_SYNC = "sync:"
