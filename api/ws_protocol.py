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
every socket, and a broadcast need not build them again for each (ADR 0010).

And it lets the application return from its ASGI call and keep the socket (the ``solo.ws.detach``
scope extension): the events come by callback from then on, so an idle socket holds no task and
no chain of suspended coroutines (the application's, its middleware's and its router's): ADR 0009.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import OPEN

WRITABLE_EXTENSION = "solo.ws.writable"  # scope["extensions"][...]: a callable, True while a send would not wait
# scope["extensions"][...]: detach(on_event) -> resume_reading, once accepted (LeanWebSocketProtocol.detach)
DETACH_EXTENSION = "solo.ws.detach"
# scope["extensions"][...]: a callable that writes a frame from encoded_frame at once and says True,
# or writes nothing and says False (the socket would wait, is closing, or compresses): then send as usual
SEND_ENCODED_EXTENSION = "solo.ws.send_encoded"


def encoded_frame(data: str | bytes) -> bytes:
    """One unfragmented, unmasked, uncompressed data frame: what a server sends for `data`, on any socket."""
    if isinstance(data, str):
        return Frame(Opcode.TEXT, data.encode()).serialize(mask=False)
    return Frame(Opcode.BINARY, data).serialize(mask=False)


class _Inbox:
    """What ``asyncio.Queue`` does for the protocol (put_nowait, get, empty) for its one reader, lazily;
    or, once a listener is set, a call of the listener for each item."""

    __slots__ = ("_items", "_waiter", "listener")

    def __init__(self) -> None:
        self._items: list[Any] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self.listener: Callable[[Any], None] | None = None

    def listen(self, listener: Callable[[Any], None]) -> None:
        """Hand what is waiting, then every later item, to `listener` (called in the protocol's callbacks)."""
        items, self._items = self._items, None
        self.listener = listener
        for item in items or ():
            listener(item)

    def put_nowait(self, item: Any) -> None:
        if self.listener is not None:
            self.listener(item)
            return
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
            extensions[DETACH_EXTENSION] = self.detach

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

    def detach(self, on_event: Callable[[dict[str, Any]], None]) -> tuple[Callable[[], None], Any]:
        """From now on hand the socket's events to `on_event` rather than to ``receive``; the application
        may then return from its ASGI call without the connection closing.

        `on_event` runs in the protocol's callbacks: it must not block nor raise. As with ``receive``,
        reading pauses once a message is handed over, until the application calls the returned
        ``resume_reading`` (it has taken the messages it was given): a slow application holds the
        client back. Also returned, the protocol's own ASGI ``send``: the application may let go of
        the middleware's wrappers of it, and of the scope, which the protocol lets go of here.
        """
        inbox = cast(_Inbox, self.queue)
        inbox.listen(on_event)
        del self.scope  # read by uvicorn only until the handshake is answered
        return self.resume_reading, self.send

    def send_receive_event_to_app(self) -> None:
        listener = cast(_Inbox, self.queue).listener
        if listener is None or self.close_sent:
            super().send_receive_event_to_app()
            return
        # uvicorn's, but reading pauses before the listener runs, not after: the listener may resume it at once.
        data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)
        self.frames = []
        if self.curr_msg_data_type == "text":
            try:
                message: dict[str, Any] = {"type": "websocket.receive", "text": data.decode()}
            except UnicodeDecodeError:
                self.logger.exception("Invalid UTF-8 sequence received from client.")
                self.conn.send_close(1007)
                self.handle_parser_exception()
                return
        else:
            message = {"type": "websocket.receive", "bytes": data}
        if not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()
        listener(message)

    def resume_reading(self) -> None:
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()

    async def run_asgi(self) -> None:
        """uvicorn's, but a detached socket stays open when the application returns."""
        try:
            result = await self.app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            pass
        except BaseException:
            self.logger.exception("Exception in ASGI application\n")
            self.send_500_response()
        else:
            if not self.handshake_complete:
                self.logger.error("ASGI callable returned without completing handshake.")
                self.send_500_response()
            elif result is not None:
                self.logger.error("ASGI callable should return None, but returned '%s'.", result)
            elif cast(_Inbox, self.queue).listener is not None:
                return
        if self.close_timer is None:
            self.transport.close()

    async def send(self, message: Any) -> None:
        await super().send(message)
        if self.handshake_complete and hasattr(self, "response"):
            # Answered (accepted, refused or denied): the scope keeps what the application may still
            # read. websockets' parser keeps the request (a local of its generator) for the life of the
            # connection, so its headers are emptied rather than only let go.
            self.request.headers.clear()
            del self.request, self.response
