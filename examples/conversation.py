"""PPP Academy's Conversation: a chat room over WebSockets.

One object per conversation. A client joins with
``ws://.../v1/objects/Conversation/<id>/ws?user=<user id>&name=<display name>`` and speaks
JSON both ways:

- it gets ``{"type": "history", "messages": [...]}`` (the last HISTORY_ON_JOIN messages) on
  joining, and everyone gets ``{"type": "presence", "users": [...]}`` when someone joins or leaves;
- it sends ``{"type": "message", "text": ...}``, ``{"type": "typing"}``, ``{"type": "edit",
  "id": ..., "text": ...}``, ``{"type": "delete", "id": ...}`` (edits and deletes by the author
  only) and ``{"type": "read", "id": ...}``; everyone gets ``message``, ``typing``, ``edited``
  and ``deleted`` events; a refused request gets ``{"type": "error", "message": ...}`` back.

Messages are kept in SQL and broadcast after they are durable. Who is connected is the
object's sockets, by tag (``user:<id>``): it survives the object's eviction and a worker's
crash, since the sockets live in the API processes. ``history`` pages back through the
messages; ``post`` sends one from outside (a support agent's tool, a bot).
"""

from __future__ import annotations

import json
from typing import Any

from solo import DurableObject, SocketRequest, UserError, WebSocket, rpc

HISTORY_ON_JOIN = 50
MAX_TEXT_CHARS = 4000
MAX_PAGE = 200


class Conversation(DurableObject):
    migrations = [
        "CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, author TEXT NOT NULL,"
        " author_name TEXT NOT NULL, text TEXT NOT NULL, created_ms INTEGER NOT NULL,"
        " edited_ms INTEGER, deleted INTEGER NOT NULL DEFAULT 0)",
        "CREATE TABLE read_receipts (user_id TEXT PRIMARY KEY, last_read_id INTEGER NOT NULL,"
        " read_ms INTEGER NOT NULL)",
    ]

    # -- sockets -------------------------------------------------------------------

    def web_socket_connect(self, ws: WebSocket, request: SocketRequest) -> None:
        user = request.query.get("user", "").strip()
        if not user or len(user) > 64:
            raise UserError("join with ?user=<id> (1 to 64 characters)", code="user_required")
        name = (request.query.get("name") or user)[:64]
        ws.accept(tags=["user:" + user], attachment={"user": user, "name": name})
        ws.send(_event("history", messages=self._page(None, HISTORY_ON_JOIN)))
        self._broadcast(_event("presence", users=self.presence()))

    def web_socket_message(self, ws: WebSocket, message: str | bytes) -> None:
        try:
            request = json.loads(message)
            kind = request["type"]
        except (ValueError, TypeError, KeyError):
            ws.send(_event("error", message='send JSON with a "type"'))
            return
        user, name = ws.attachment["user"], ws.attachment["name"]
        try:
            if kind == "message":
                self._broadcast(_event("message", message=self._add(user, name, request.get("text"))))
            elif kind == "typing":
                self._broadcast(_event("typing", user=user, name=name), but=ws)
            elif kind == "edit":
                self._broadcast(_event("edited", message=self._edit(user, request.get("id"), request.get("text"))))
            elif kind == "delete":
                self._broadcast(_event("deleted", id=self._delete(user, request.get("id"))))
            elif kind == "read":
                self._read(user, request.get("id"))
            else:
                ws.send(_event("error", message=f"unknown type {str(kind)[:40]!r}"))
        except UserError as exc:
            ws.send(_event("error", message=exc.message))

    def web_socket_close(self, ws: WebSocket, code: int, reason: str) -> None:
        self._broadcast(_event("presence", users=self.presence()))

    # -- calls ---------------------------------------------------------------------

    @rpc
    def history(self, before_id: int | None = None, limit: int = 50) -> dict[str, Any]:
        """Messages older than `before_id` (the newest if None), oldest first; `next` pages further back."""
        size = max(1, min(limit, MAX_PAGE))
        messages = self._page(before_id, size)
        return {"messages": messages, "next": messages[0]["id"] if messages and len(messages) == size else None}

    @rpc
    def presence(self) -> list[str]:
        """The users connected now (each once, however many sockets they have)."""
        return sorted({ws.attachment["user"] for ws in self.websockets.all()})

    @rpc
    def post(self, user: str, text: str, name: str | None = None) -> dict[str, Any]:
        """A message from outside the room (a bot, a support tool), delivered like any other."""
        message = self._add(user, name or user, text)
        self._broadcast(_event("message", message=message))
        return message

    @rpc
    def read_receipts(self) -> dict[str, int]:
        return {u: i for u, i in self.sql.execute("SELECT user_id, last_read_id FROM read_receipts")}

    # -- internals -----------------------------------------------------------------

    def _broadcast(self, text: str, but: WebSocket | None = None) -> None:
        for other in self.websockets.all():
            if but is None or other.id != but.id:
                other.send(text)

    def _add(self, user: str, name: str, text: Any) -> dict[str, Any]:
        text = _text(text)
        cursor = self.sql.execute(
            "INSERT INTO messages (author, author_name, text, created_ms) VALUES (?, ?, ?, ?)",
            (user, name, text, self.ctx.now_ms()),
        )
        return self._message(int(cursor.lastrowid or 0))

    def _edit(self, user: str, message_id: Any, text: Any) -> dict[str, Any]:
        self._own(user, message_id)
        self.sql.execute(
            "UPDATE messages SET text = ?, edited_ms = ? WHERE id = ?", (_text(text), self.ctx.now_ms(), message_id)
        )
        return self._message(message_id)

    def _delete(self, user: str, message_id: Any) -> int:
        self._own(user, message_id)
        self.sql.execute("UPDATE messages SET deleted = 1, text = '' WHERE id = ?", (message_id,))
        return int(message_id)

    def _own(self, user: str, message_id: Any) -> None:
        row = self.sql.execute(
            "SELECT author FROM messages WHERE id = ? AND deleted = 0", (message_id if _is_id(message_id) else -1,)
        ).fetchone()
        if row is None:
            raise UserError(f"no message {message_id!r}")
        if row["author"] != user:
            raise UserError("only its author may change a message", status=403)

    def _read(self, user: str, message_id: Any) -> None:
        if not _is_id(message_id):
            raise UserError("read needs a message id")
        self.sql.execute(
            "INSERT INTO read_receipts VALUES (?, ?, ?) ON CONFLICT (user_id) DO UPDATE"
            " SET last_read_id = max(last_read_id, excluded.last_read_id), read_ms = excluded.read_ms",
            (user, message_id, self.ctx.now_ms()),
        )

    def _message(self, message_id: int) -> dict[str, Any]:
        row = self.sql.execute("SELECT * FROM messages WHERE id = ?", (message_id,)).fetchone()
        return _row(row)

    def _page(self, before_id: int | None, limit: int) -> list[dict[str, Any]]:
        rows = self.sql.execute(
            "SELECT * FROM messages WHERE deleted = 0 AND id < ? ORDER BY id DESC LIMIT ?",
            (before_id if before_id is not None else 2**62, limit),
        ).fetchall()
        return [_row(r) for r in reversed(rows)]


def _event(kind: str, **fields: Any) -> str:
    return json.dumps({"type": kind, **fields})


def _text(text: Any) -> str:
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT_CHARS:
        raise UserError(f"a message is text of 1 to {MAX_TEXT_CHARS} characters")
    return text


def _is_id(value: Any) -> bool:
    return type(value) is int and value > 0


def _row(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "user": row["author"],
        "name": row["author_name"],
        "text": row["text"],
        "created_ms": row["created_ms"],
        "edited_ms": row["edited_ms"],
    }
