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
and starts a writer task only for a socket that would block.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

WRITABLE_EXTENSION = "solo.ws.writable"  # scope["extensions"][...]: a callable, True while a send would not wait


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

    async def send(self, message: Any) -> None:
        await super().send(message)
        if self.handshake_complete and hasattr(self, "response"):
            # Answered (accepted, refused or denied): the scope keeps what the application may still
            # read. websockets' parser keeps the request (a local of its generator) for the life of the
            # connection, so its headers are emptied rather than only let go.
            self.request.headers.clear()
            del self.request, self.response
