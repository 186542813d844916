"""WebSockets as the object sees them: ``self.websockets``, the ``ws`` handle, its events and its sends.

A socket terminates at an API process (its gateway, api/sockets.py); the object
holds only its registry entry, a row of ``_solo_sockets`` (id, gateway, tags,
attachment) written in the transaction of the event or call that changes it.
So the registry survives eviction and a worker's death, and ``all()`` after
re-hydration returns the open sockets.

Events (connect, message, close, error) arrive as mailbox entries of the method
``SOCKET_METHOD`` and run one at a time with calls and alarms, each in its own
savepoint, recorded by event id like calls (exactly once).

What a handler, call or alarm sends (``ws.send``, ``ws.close``, auto-responses)
is buffered while it runs, written to ``_solo_socket_outbox`` when it succeeds
(nothing when it fails), and routed to the gateways only after the batch is
committed and shipped: the output gate. Each outgoing message carries the
epoch of the owner that wrote it and a number that grows within the epoch, so
a gateway drops a message it already delivered when a new owner sends the
leftovers of the outbox again.

Routed messages stay in the outbox for ``ROUTED_RETAIN_MS``: Redis keeps nothing on
disk, so a restart empties the gateways' inboxes, and the gateway that notices asks
each of its objects to route its outbox again (a resume event). The outbox, shipped
with the batch, is the durable copy; the gateway's (epoch, number) check keeps the
client from seeing a message twice.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from solo.objects.calls import Call
from solo.objects.errors import SocketLimitExceeded, TooManySockets
from solo.objects.naming import Address, is_object_id

SOCKET_METHOD = "_solo_socket"  # never an @rpc name: those may not start with "_"
# "resume" comes from a gateway that found Redis emptied (a restart): the object routes its
# outbox again, as messages routed before the restart may have been in the lost inbox.
EVENTS = ("connect", "message", "close", "error", "resume")
HANDLERS = {  # handler name -> its arguments besides self; web_socket_message is required for sockets
    "web_socket_connect": ("ws", "request"),
    "web_socket_message": ("ws", "message"),
    "web_socket_close": ("ws", "code", "reason"),
    "web_socket_error": ("ws", "error"),
}

# Routed messages stay in the outbox this long: if Redis restarts (and empties the gateways'
# inboxes) meanwhile, a resume event routes them again. A gateway pops its inbox continuously,
# and a message left there this long expires anyway (coordination/gateways.py INBOX_TTL_MS).
ROUTED_RETAIN_MS = 60_000
MAX_SOCKETS = 32_768  # open sockets per object
MAX_MESSAGE_BYTES = 1024 * 1024  # one message, either way
MAX_TAGS = 10
MAX_TAG_CHARS = 256
MAX_ATTACHMENT_BYTES = 16 * 1024  # as JSON
MAX_REASON_BYTES = 123  # what a close frame can carry

SOCKETS_DDL = (
    # One row per open socket of the object: its gateway (the API process holding it), tags, attachment.
    "CREATE TABLE IF NOT EXISTS _solo_sockets (id TEXT PRIMARY KEY, gateway TEXT NOT NULL, tags TEXT NOT NULL,"
    " attachment TEXT NOT NULL, created_ms INTEGER NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS _solo_socket_tags (tag TEXT NOT NULL, socket TEXT NOT NULL,"
    " PRIMARY KEY (tag, socket)) WITHOUT ROWID",
    # Messages for gateways, written in the sending call's savepoint, routed after the batch is shipped.
    "CREATE TABLE IF NOT EXISTS _solo_socket_outbox (seq INTEGER PRIMARY KEY, message TEXT NOT NULL)",
    # The auto-response pair (set_auto_response), given to each gateway with its sockets.
    "CREATE TABLE IF NOT EXISTS _solo_socket_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
)
SOCKET_TABLES = ("_solo_sockets", "_solo_socket_tags", "_solo_socket_outbox", "_solo_socket_settings")

Kind = Literal["text", "bytes", "close", "auto"]


def is_socket_id(value: object) -> bool:
    """Socket and gateway ids are made like object ids (32 lowercase hex): safe in a Redis key."""
    return is_object_id(value)


def event_call(address: Address, socket_id: str, gateway: str, event: str, call_id: str, **fields: Any) -> Call:
    """A socket's event as an entry of its object's mailbox; `call_id` is the event id (exactly once)."""
    return Call(
        call_id=call_id,
        object_id=address.object_id,
        class_name=address.class_name,
        object_name=address.name,
        method=SOCKET_METHOD,
        args={"event": event, "socket": socket_id, "gateway": gateway, **fields},
        enqueued_ms=time.time_ns() // 1_000_000,
        tenant=address.tenant,
    )


def lost_event_id(gateway: str, socket_id: str) -> str:
    """The id of the close event for a socket whose gateway died: the same whoever sends it, and how often."""
    return hashlib.sha256(f"socket-lost\x00{gateway}\x00{socket_id}".encode()).hexdigest()[:32]


def address_of(raw: Any) -> Address | None:
    """An object's address as a gateway or an outgoing message carries it: [object id, class, name, tenant]."""
    if not (isinstance(raw, list) and len(raw) == 4 and all(isinstance(part, str) for part in raw)):
        return None
    object_id, class_name, name, tenant = raw
    return Address(class_name, name, object_id, tenant) if is_object_id(object_id) else None


def handler_problems(cls: type) -> list[str]:
    """Definition-time checks of the socket handlers a class defines."""
    problems = []
    for name, params in HANDLERS.items():
        handler = getattr(cls, name, None)
        if handler is None:
            continue
        usage = f"def {name}(self, {', '.join(params)})"
        if not callable(handler):
            problems.append(f"{name} must be a method: {usage}")
            continue
        if inspect.iscoroutinefunction(handler):
            problems.append(f"{name} must be a plain def; socket events already run one at a time")
            continue
        if getattr(handler, "__solo_rpc__", False):
            problems.append(f"{name} is a socket handler and cannot be @rpc")
        try:
            signature = inspect.signature(handler)
        except (TypeError, ValueError):
            continue
        positional = [
            p for p in signature.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        others = [p for p in signature.parameters.values() if p not in positional]
        if len(positional) != len(params) + 1 or any(p.default is not p.empty for p in positional) or others:
            problems.append(f"{name} must take exactly the arguments {', '.join(params)} besides self: {usage}")
    return problems


def accepts_sockets(cls: type) -> bool:
    return callable(getattr(cls, "web_socket_message", None))


@dataclass(frozen=True)
class SocketRequest:
    """The upgrade request as the connect handler sees it (the API key is never in it)."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names

    @classmethod
    def of(cls, raw: Any) -> SocketRequest:
        raw = raw if isinstance(raw, dict) else {}
        return cls(str(raw.get("path", "")), dict(raw.get("query") or {}), dict(raw.get("headers") or {}))


def encode_data(data: str | bytes) -> tuple[Kind, str]:
    if isinstance(data, str):
        size = len(data.encode("utf-8", "surrogatepass"))
        kind: Kind = "text"
        text = data
    elif isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
        size = len(raw)
        kind = "bytes"
        text = base64.b64encode(raw).decode()
    else:
        raise TypeError(f"a WebSocket message is str or bytes, not {type(data).__name__}")
    if size > MAX_MESSAGE_BYTES:
        raise SocketLimitExceeded(f"a WebSocket message is at most {MAX_MESSAGE_BYTES} bytes; this one has {size}")
    return kind, text


def decode_data(kind: str, data: str) -> str | bytes:
    return base64.b64decode(data) if kind == "bytes" else data


def check_tags(tags: Any) -> list[str]:
    tags = list(tags or [])
    if len(tags) > MAX_TAGS:
        raise SocketLimitExceeded(f"a socket has at most {MAX_TAGS} tags, not {len(tags)}")
    for tag in tags:
        if not isinstance(tag, str) or not 0 < len(tag) <= MAX_TAG_CHARS:
            raise SocketLimitExceeded(f"a tag is a string of 1 to {MAX_TAG_CHARS} characters, not {str(tag)[:40]!r}")
    return list(dict.fromkeys(tags))


def encode_attachment(value: Any) -> str:
    try:
        text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise TypeError(f"a socket's attachment must be JSON-able: {exc}") from None
    if len(text.encode()) > MAX_ATTACHMENT_BYTES:
        raise SocketLimitExceeded(f"a socket's attachment is at most {MAX_ATTACHMENT_BYTES} bytes of JSON")
    return text


@dataclass
class _Pending:
    """A message a running call sent, kept until the call succeeds."""

    kind: Kind
    data: str
    targets: list[list[str]]  # [gateway, socket]
    code: int = 0
    reason: str = ""


class WebSocket:
    """One open socket, as a handler, call or alarm holds it (``ws``)."""

    def __init__(
        self, book: SocketBook, socket_id: str, gateway: str, tags: list[str], attachment: Any, *, registered: bool
    ) -> None:
        self._book = book
        self.id = socket_id
        self.gateway = gateway
        self._tags = tags
        self._attachment = attachment
        self._registered = registered
        self._closed = False
        self._stored: tuple[str, str] | None = None  # tags and attachment as stored, decoded when first read

    @classmethod
    def stored(cls, book: SocketBook, socket_id: str, gateway: str, tags: str, attachment: str) -> WebSocket:
        """A registered socket from its row; a broadcast reads neither its tags nor its attachment."""
        ws = cls(book, socket_id, gateway, [], None, registered=True)
        ws._stored = (tags, attachment)
        return ws

    def _decode(self) -> None:
        if self._stored is None:
            return
        tags, attachment = self._stored
        self._stored = None
        try:
            self._tags = [t for t in json.loads(tags) if isinstance(t, str)]
            self._attachment = json.loads(attachment)
        except ValueError:
            self._tags, self._attachment = [], None

    def __repr__(self) -> str:
        return f"<WebSocket {self.id} tags={self.tags!r}>"

    @property
    def accepted(self) -> bool:
        return self._registered

    @property
    def tags(self) -> list[str]:
        self._decode()
        return list(self._tags)

    @property
    def attachment(self) -> Any:
        self._decode()
        return self._attachment

    @attachment.setter
    def attachment(self, value: Any) -> None:
        self._decode()
        encoded = encode_attachment(value)
        self._attachment = json.loads(encoded)
        if self._registered:
            self._book._update_attachment(self.id, encoded)

    def accept(self, tags: list[str] | None = None, attachment: Any = None) -> None:
        """Accept the connection (in web_socket_connect), with tags to find it by and an attachment."""
        if self._registered:
            raise RuntimeError("this socket is already accepted")
        self._tags = check_tags(tags)
        if attachment is not None:
            self._attachment = json.loads(encode_attachment(attachment))
        self._book._register(self)
        self._registered = True

    def send(self, data: str | bytes) -> None:
        """Send a message; it leaves after this handler's batch is durable, in order with the socket's others."""
        if not self._registered:
            raise RuntimeError("accept the socket before sending on it")
        kind, text = encode_data(data)
        self._book._queue(_Pending(kind, text, [[self.gateway, self.id]]))

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the socket (after this handler's batch is durable); it leaves the object's sockets at once."""
        if not self._registered or self._closed:
            return
        if not (code == 1000 or 3000 <= code <= 4999):
            raise ValueError("a close code is 1000 or from 3000 to 4999")
        if len(reason.encode()) > MAX_REASON_BYTES:
            raise ValueError(f"a close reason is at most {MAX_REASON_BYTES} bytes of UTF-8")
        self._closed = True
        self._book._queue(_Pending("close", "", [[self.gateway, self.id]], code, reason))
        self._book._unregister(self.id)


@dataclass
class SocketBook:
    """One object's sockets and the messages for them: the registry tables, and the running call's sends."""

    object_id: str
    address: list[str]  # [object id, class, name, tenant]: where a gateway sends the events of a socket
    clock_ms: Callable[[], int]
    conn: sqlite3.Connection | None = None
    epoch: int = 0
    _number: int = 0  # of the outgoing messages in this epoch
    _pending: list[_Pending] = field(default_factory=list)
    _checked: set[tuple[str, str]] = field(default_factory=set)  # (gateway, socket) ids found well-formed

    # -- the user's surface (self.websockets) -------------------------------------

    def all(self, tag: str | None = None) -> list[WebSocket]:
        """The open sockets, oldest first; with `tag`, those that carry it."""
        db = self._db()
        if tag is None:
            rows = db.execute("SELECT id, gateway, tags, attachment FROM _solo_sockets ORDER BY created_ms, id")
        else:
            rows = db.execute(
                "SELECT s.id, s.gateway, s.tags, s.attachment FROM _solo_socket_tags t"
                " JOIN _solo_sockets s ON s.id = t.socket WHERE t.tag = ? ORDER BY s.created_ms, s.id",
                (tag,),
            )
        return [self._handle(row) for row in rows.fetchall()]

    def count(self, tag: str | None = None) -> int:
        db = self._db()
        if tag is None:
            return int(db.execute("SELECT count(*) FROM _solo_sockets").fetchone()[0])
        return int(db.execute("SELECT count(*) FROM _solo_socket_tags WHERE tag = ?", (tag,)).fetchone()[0])

    def get(self, socket_id: str) -> WebSocket | None:
        row = (
            self._db()
            .execute("SELECT id, gateway, tags, attachment FROM _solo_sockets WHERE id = ?", (socket_id,))
            .fetchone()
        )
        return None if row is None else self._handle(row)

    def set_auto_response(self, request: str, response: str) -> None:
        """Gateways answer a text message equal to `request` with `response`, without waking the object."""
        if not isinstance(request, str) or not isinstance(response, str):
            raise TypeError("an auto-response pair is two strings")
        for text in (request, response):
            encode_data(text)
        pair = json.dumps([request, response])
        self._db().execute(
            "INSERT OR REPLACE INTO _solo_socket_settings (key, value) VALUES ('auto_response', ?)", (pair,)
        )
        targets = [[s.gateway, s.id] for s in self.all()]
        if targets:
            self._queue(_Pending("auto", pair, targets))

    def auto_response(self) -> list[str] | None:
        row = self._db().execute("SELECT value FROM _solo_socket_settings WHERE key = 'auto_response'").fetchone()
        if row is None:
            return None
        try:
            pair = json.loads(row[0])
        except ValueError:
            return None
        return pair if isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair) else None

    # -- the running call's sends ----------------------------------------------------

    def take_pending(self) -> list[tuple[int, str]]:
        """The running call succeeded: write what it sent to the outbox (in its savepoint).

        Consecutive messages with the same content become one outgoing message for all
        their sockets (a broadcast is one row), which keeps each socket's order.
        """
        pending, self._pending = self._pending, []
        merged: list[_Pending] = []
        merged_sockets: set[str] = set()  # of the last merged message
        for item in pending:
            last = merged[-1] if merged else None
            if (
                last is not None
                and item.kind in ("text", "bytes")
                and (last.kind, last.data) == (item.kind, item.data)
                and not any(socket_id in merged_sockets for _, socket_id in item.targets)
            ):
                last.targets.extend(item.targets)
            else:
                merged.append(item)
                merged_sockets = set()
            merged_sockets.update(socket_id for _, socket_id in item.targets)
        messages = []
        for item in merged:
            self._number += 1
            by_gateway: dict[str, list[str]] = {}
            for gateway, socket_id in item.targets:
                by_gateway.setdefault(gateway, []).append(socket_id)
            message: dict[str, Any] = {
                "e": self.epoch,
                "n": self._number,
                "o": self.address,
                "t": by_gateway,  # gateway id -> its sockets
                "k": item.kind,
                "d": item.data,
            }
            if item.kind == "close":
                message["c"], message["r"] = item.code, item.reason
            text = json.dumps(message, separators=(",", ":"))
            cursor = self._db().execute("INSERT INTO _solo_socket_outbox (message) VALUES (?)", (text,))
            messages.append((int(cursor.lastrowid or 0), text))
        return messages

    def drop_pending(self) -> None:
        """The running call failed: it sends nothing."""
        self._pending = []

    def read_outbox(self) -> list[tuple[int, str]]:
        """Committed messages not yet deleted: unrouted, or routed less than ROUTED_RETAIN_MS ago."""
        rows = self._db().execute("SELECT seq, message FROM _solo_socket_outbox ORDER BY seq")
        return [(int(s), str(m)) for s, m in rows]

    def delete_routed(self, up_to_seq: int) -> None:
        self._db().execute("DELETE FROM _solo_socket_outbox WHERE seq <= ?", (up_to_seq,))

    def last_seq(self) -> int:
        row = self._db().execute("SELECT max(seq) FROM _solo_socket_outbox").fetchone()
        return int(row[0] or 0)

    # -- events ------------------------------------------------------------------------

    def newcomer(self, socket_id: str, gateway: str) -> WebSocket:
        """The socket of a connect event, not yet accepted."""
        return WebSocket(self, socket_id, gateway, [], None, registered=False)

    def refuse_unknown(self, socket_id: str, gateway: str) -> None:
        """An event of a socket the object does not know (closed by it, or gone from a restored state)."""
        self._queue(_Pending("close", "", [[gateway, socket_id]], 1011, "unknown to the object"))

    def forget(self, socket_id: str) -> None:
        """The socket closed: it leaves the registry (whether its close handler succeeded or not)."""
        self._unregister(socket_id)

    # -- internals ---------------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        if self.conn is None:
            raise RuntimeError("the object's sockets are not available here")
        return self.conn

    def _handle(self, row: tuple[Any, ...]) -> WebSocket:
        socket_id, gateway, tags, attachment = row
        return WebSocket.stored(self, str(socket_id), str(gateway), str(tags), str(attachment))

    def _queue(self, item: _Pending) -> None:
        gateway, socket_id = item.targets[0]
        if (gateway, socket_id) not in self._checked:
            if not (is_socket_id(gateway) and is_socket_id(socket_id)):
                return  # a row that did not come from solo (a restored or imported state): no Redis key from it
            if len(self._checked) > 100_000:  # sockets come and go: keep the memory bounded
                self._checked.clear()
            self._checked.add((gateway, socket_id))
        self._pending.append(item)

    def _register(self, ws: WebSocket) -> None:
        db = self._db()
        if self.count() >= MAX_SOCKETS:
            raise TooManySockets(f"an object has at most {MAX_SOCKETS} open sockets")
        db.execute(
            "INSERT OR REPLACE INTO _solo_sockets (id, gateway, tags, attachment, created_ms) VALUES (?, ?, ?, ?, ?)",
            (ws.id, ws.gateway, json.dumps(ws.tags), encode_attachment(ws.attachment), self.clock_ms()),
        )
        db.executemany(
            "INSERT OR IGNORE INTO _solo_socket_tags (tag, socket) VALUES (?, ?)", [(t, ws.id) for t in ws.tags]
        )

    def _unregister(self, socket_id: str) -> None:
        db = self._db()
        db.execute("DELETE FROM _solo_sockets WHERE id = ?", (socket_id,))
        db.execute("DELETE FROM _solo_socket_tags WHERE socket = ?", (socket_id,))

    def _update_attachment(self, socket_id: str, encoded: str) -> None:
        self._db().execute("UPDATE _solo_sockets SET attachment = ? WHERE id = ?", (encoded, socket_id))


class WebSockets:
    """``self.websockets``: the object's open sockets (see objects/websockets.py)."""

    def __init__(self, book: SocketBook) -> None:
        self._book = book

    def all(self, tag: str | None = None) -> list[WebSocket]:
        """The open sockets, oldest first; with `tag`, only those that carry it."""
        return self._book.all(tag)

    def count(self, tag: str | None = None) -> int:
        return self._book.count(tag)

    def set_auto_response(self, request: str, response: str) -> None:
        """API processes answer the text message `request` with `response` without waking the object."""
        self._book.set_auto_response(request, response)
