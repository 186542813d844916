"""uvicorn's websockets-sansio protocol, lighter per idle socket: the server side of ``solo api``.

An API process may hold 10,000s of idle sockets, so what each one keeps counts. uvicorn's
protocol keeps, for the life of the connection, the handshake's parsed request and response
(their header lists: about 4 KiB), an ``asyncio.Queue`` for the received events and an
``asyncio.Event`` for writability (five deques of about 760 bytes each, made eagerly). This
subclass changes only that bookkeeping, not the wire protocol: it drops the handshake once it
is answered and uses a one-consumer inbox and a flag with lazily made waiters instead. The
measurements are in docs/adr/0007-lean-websocket-server.md.

It also tells the application whether a send would wait (the ``solo.ws.writable`` scope
extension), so that the gateway writes to a socket in line while its transport takes data
and starts a writer task only for a socket that would block; and it takes a frame encoded
once for many sockets (the ``solo.ws.send_encoded`` extension, ``encoded_frame``): a server's
frames are not masked, so without per-message compression one message is the same bytes on
every socket, and a broadcast need not build them again for each (ADR 0011).
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import OPEN

WRITABLE_EXTENSION = "solo.ws.writable"  # scope["extensions"][...]: a callable, True while a send would not wait
# scope["extensions"][...]: a callable that writes a frame from encoded_frame at once and says True,
# or writes nothing and says False (the socket would wait, is closing, or compresses): then send as usual
SEND_ENCODED_EXTENSION = "solo.ws.send_encoded"


def encoded_frame(data: str | bytes) -> bytes:
    """One unfragmented, unmasked, uncompressed data frame: what a server sends for `data`, on any socket."""
    if isinstance(data, str):
        return Frame(Opcode.TEXT, data.encode()).serialize(mask=False)
    return Frame(Opcode.BINARY, data).serialize(mask=False)


class _Inbox:
    """What ``asyncio.Queue`` does for the protocol (put_nowait, get, empty) for its one reader, lazily."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[Any] | None = None
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        if self._items is None:
            self._items = []
        self._items.append(item)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def empty(self) -> bool:
        return not self._items

    async def get(self) -> Any:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        item = self._items.pop(0)
        if not self._items:
            self._items = None
        return item


class _Writable:
    """What ``asyncio.Event`` does for the protocol's writability, with its waiters made only when one waits."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = True
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> bool:
        if self._set:
            return True
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)
        return True


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol without what an open socket no longer needs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = _Inbox()  # type: ignore[assignment]
        self.writable = _Writable()  # type: ignore[assignment]

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        if self.response.status_code == 101:  # else refused by websockets itself, the connection closing
            extensions = cast(dict[str, Any], self.scope["extensions"])  # typed for uvicorn's own extensions only
            extensions[WRITABLE_EXTENSION] = self.writable.is_set
            extensions[SEND_ENCODED_EXTENSION] = self.send_encoded

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        # The scope (kept by the application) would hold this protocol through the bound method: a
        # cycle that only the cyclic collector would free.
        extensions = getattr(self, "scope", {}).get("extensions") or {}
        extensions.pop(SEND_ENCODED_EXTENSION, None)

    def send_encoded(self, frame: bytes) -> bool:
        """Write `frame` (from encoded_frame) now, if that is what ``send`` would write without waiting.

        ``send`` of a ``websocket.send`` message waits for writability, then has websockets build
        the frame and writes it. Where that frame equals `frame` (an open connection, no extension
        negotiated, no fragmented message under way) and nothing else is waiting to go out first,
        the same bytes go out here without the ASGI message and a frame per socket.
        """
        conn = self.conn
        if (
            not self.writable.is_set()
            or self.disconnected
            or self.close_sent
            or not self.handshake_complete
            or self.initial_response is not None
            or conn.state is not OPEN
            or conn.extensions
            or conn.expect_continuation_frame
            or conn.writes
            or self.transport.is_closing()
        ):
            return False
        self.transport.write(frame)
        return True

    async def send(self, message: Any) -> None:
        await super().send(message)
        if self.handshake_complete and hasattr(self, "response"):
            # Answered (accepted, refused or denied): the scope keeps what the application may still
            # read. websockets' parser keeps the request (a local of its generator) for the life of the
            # connection, so its headers are emptied rather than only let go.
            self.request.headers.clear()
            del self.request, self.response
