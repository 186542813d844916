"""uvicorn's httptools protocol, writing a response's head and its body to the socket in one write.

uvicorn writes the status line and headers when the app sends ``http.response.start`` and
the body when it sends ``http.response.body``: two ``send()`` system calls, two TCP segments
and, on loopback, the receiving side's softirq work twice, for every answer. Here the head
is held until the body's first message comes and goes out with it (docs/adr/0020). What is
written, in what order, and every check uvicorn makes are unchanged: uvicorn's own ``send``
still runs for both messages, over a transport that keeps or prefixes the head.

If the app never sends a body after the head (it raised, or the client went away), the head
is not written: uvicorn closes such a connection anyway, which the client sees either way as
an incomplete answer. A body that never reaches ``transport.write`` (HEAD requests) gets
its head written after uvicorn's ``send``.
"""

from __future__ import annotations

from typing import Any

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
except ImportError:  # httptools is not installed: uvicorn's "auto" picks h11, as ADR 0005 allows
    HttpToolsProtocol = RequestResponseCycle = None  # type: ignore[assignment,misc]


class _Held:
    """A transport that keeps what uvicorn writes of a response's head."""

    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> None:
        self.data += data


class _Prefixed:
    """A transport whose first write carries the held head before the data."""

    def __init__(self, transport: Any, head: bytes) -> None:
        self.transport = transport
        self.head: bytes | None = head

    def write(self, data: bytes) -> None:
        if self.head is not None:
            data, self.head = self.head + data, None
        self.transport.write(data)

    def close(self) -> None:  # after a HEAD request's answer, which writes no body: the head first
        if self.head is not None:
            self.transport.write(self.head)
            self.head = None
        self.transport.close()

    def __getattr__(self, name: str) -> Any:  # is_closing() and the rest: the real transport's
        return getattr(self.transport, name)


if RequestResponseCycle is not None:

    class OneWriteCycle(RequestResponseCycle):
        _head: bytes | None = None

        async def send(self, message: Any) -> None:
            kind = message["type"]
            if kind == "http.response.start" and not self.response_started:
                real, held = self.transport, _Held()
                self.transport = held  # type: ignore[assignment]
                try:
                    await super().send(message)
                finally:
                    self.transport = real
                self._head = held.data or None
                return
            head = self._head
            if head is None:
                await super().send(message)
                return
            self._head = None
            real, prefixed = self.transport, _Prefixed(self.transport, head)
            self.transport = prefixed  # type: ignore[assignment]
            try:
                await super().send(message)
            finally:
                self.transport = real
                if prefixed.head is not None and not self.disconnected:  # nothing written: the head alone
                    real.write(prefixed.head)

    class OneWriteHttpToolsProtocol(HttpToolsProtocol):
        """HttpToolsProtocol whose request cycles write each response's head with its body."""

        def on_headers_complete(self) -> None:
            super().on_headers_complete()
            # The cycle made just now: its task is scheduled, not started, so it runs as OneWriteCycle.
            # (A WebSocket upgrade makes none; a cycle seen before is one already.)
            if type(self.cycle) is RequestResponseCycle:
                self.cycle.__class__ = OneWriteCycle


def http_protocol() -> Any:
    """What `solo api` gives uvicorn as its HTTP protocol: the class above, or "auto" without httptools."""
    if RequestResponseCycle is None:
        return "auto"
    return OneWriteHttpToolsProtocol
