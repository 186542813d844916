"""PPP Academy's Notification: one user's notifications, stored and delivered live.

One object per user. Anyone (another object with ``self.objects.get("Notification",
user).send("notify", ...)``, or a client over HTTP) calls ``notify``: the notification is
stored, and pushed to every socket the user has open (each of their devices:
``ws://.../v1/objects/Notification/<user>/ws?device=<name>``). A device that connects gets
``{"type": "unread", "count": n, "notifications": [...]}`` with what it missed; live ones come
as ``{"type": "notification", ...}``, and every change of the unread count as ``{"type":
"unread", "count": n}``. A device marks notifications read with ``{"type": "read", "ids":
[...]}`` (or ``"ids": null`` for all), or a client calls ``mark_read``.
"""

from __future__ import annotations

import json
from typing import Any

from solo import DurableObject, SocketRequest, WebSocket, rpc

BACKLOG_ON_CONNECT = 100
MAX_PAYLOAD_BYTES = 8 * 1024
KEPT_READ = 1000  # read notifications kept per user; older ones are deleted


class Notification(DurableObject):
    migrations = [
        "CREATE TABLE notifications (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,"
        " payload TEXT NOT NULL, created_ms INTEGER NOT NULL, read_ms INTEGER)",
        "CREATE INDEX notifications_unread ON notifications (read_ms, id)",
    ]

    # -- sockets ---------------------------------------------------------------------

    def web_socket_connect(self, ws: WebSocket, request: SocketRequest) -> None:
        device = (request.query.get("device") or "device")[:64]
        ws.accept(tags=["device:" + device], attachment={"device": device, "since_ms": self.ctx.now_ms()})
        ws.send(json.dumps({"type": "unread", "count": self.unread_count(), "notifications": self._unread()}))

    def web_socket_message(self, ws: WebSocket, message: str | bytes) -> None:
        try:
            request = json.loads(message)
        except ValueError:
            return
        if isinstance(request, dict) and request.get("type") == "read":
            ids = request.get("ids")
            self.mark_read(ids if isinstance(ids, list) else None)

    # -- calls -----------------------------------------------------------------------

    @rpc
    def notify(self, payload: dict[str, Any], kind: str = "info") -> dict[str, Any]:
        """Store a notification and push it to the user's connected devices; says how many got it."""
        encoded = json.dumps(payload)
        if len(encoded.encode()) > MAX_PAYLOAD_BYTES:
            raise ValueError(f"a notification's payload is at most {MAX_PAYLOAD_BYTES} bytes of JSON")
        now = self.ctx.now_ms()
        cursor = self.sql.execute(
            "INSERT INTO notifications (kind, payload, created_ms) VALUES (?, ?, ?)", (kind[:64], encoded, now)
        )
        notification = {"id": cursor.lastrowid, "kind": kind[:64], "payload": payload, "created_ms": now}
        devices = self.websockets.all()
        for ws in devices:
            ws.send(json.dumps({"type": "notification", **notification}))
        self._announce_unread()
        return {"id": notification["id"], "delivered": len(devices), "unread": self.unread_count()}

    @rpc
    def unread_count(self) -> int:
        return int(self.sql.execute("SELECT count(*) FROM notifications WHERE read_ms IS NULL").fetchone()[0])

    @rpc
    def recent(self, unread_only: bool = False, limit: int = 50) -> list[dict[str, Any]]:
        """The newest notifications first."""
        where = "WHERE read_ms IS NULL" if unread_only else ""
        rows = self.sql.execute(
            f"SELECT * FROM notifications {where} ORDER BY id DESC LIMIT ?", (max(1, min(limit, 500)),)
        )
        return [_row(r) for r in rows]

    @rpc
    def mark_read(self, ids: list[int] | None = None) -> int:
        """Mark these notifications (all if None) read; returns how many changed."""
        now = self.ctx.now_ms()
        if ids is None:
            changed = self.sql.execute("UPDATE notifications SET read_ms = ? WHERE read_ms IS NULL", (now,)).rowcount
        else:
            wanted = [i for i in ids if type(i) is int][:1000]
            marks = ",".join("?" * len(wanted)) or "NULL"
            changed = self.sql.execute(
                f"UPDATE notifications SET read_ms = ? WHERE read_ms IS NULL AND id IN ({marks})", (now, *wanted)
            ).rowcount
        self.sql.execute(
            "DELETE FROM notifications WHERE read_ms IS NOT NULL AND id NOT IN"
            " (SELECT id FROM notifications WHERE read_ms IS NOT NULL ORDER BY id DESC LIMIT ?)",
            (KEPT_READ,),
        )
        if changed:
            self._announce_unread()
        return changed

    @rpc
    def presence(self) -> dict[str, Any]:
        """Whether the user is online, and on which devices."""
        devices = sorted({ws.attachment["device"] for ws in self.websockets.all()})
        return {"online": bool(devices), "devices": devices}

    # -- internals -------------------------------------------------------------------

    def _announce_unread(self) -> None:
        count = json.dumps({"type": "unread", "count": self.unread_count()})
        for ws in self.websockets.all():
            ws.send(count)

    def _unread(self) -> list[dict[str, Any]]:
        rows = self.sql.execute(
            "SELECT * FROM notifications WHERE read_ms IS NULL ORDER BY id DESC LIMIT ?", (BACKLOG_ON_CONNECT,)
        )
        return [_row(r) for r in rows]


def _row(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "kind": row["kind"],
        "payload": json.loads(row["payload"]),
        "created_ms": row["created_ms"],
        "read": row["read_ms"] is not None,
    }
