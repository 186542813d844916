"""The API's HTTP protocol (api/http_protocol.py): each answer's head and body in one write,
the same bytes as uvicorn's own protocol writes in two."""

from __future__ import annotations

import asyncio

import pytest
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from solo.api.http_protocol import OneWriteHttpToolsProtocol


class Transport:
    """Records what the protocol writes, and whether it closed the connection."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default=None):
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 40000)}.get(name, default)

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def get_write_buffer_size(self) -> int:
        return 0


async def app(scope, receive, send):
    if scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        await send({"type": "http.response.body", "body": b"b"})
        return
    if scope["path"] == "/fails":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        raise RuntimeError("after the head")
    body = b"" if scope["path"] == "/empty" else b'{"ok":true}'
    while (await receive()).get("more_body"):
        pass
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def exchange(protocol_class, request: bytes) -> Transport:
    config = Config(app=app, log_config=None, log_level="critical", date_header=False)
    config.load()
    protocol = protocol_class(config=config, server_state=ServerState(), app_state={})
    transport = Transport()
    protocol.connection_made(transport)
    protocol.data_received(request)
    for _ in range(50):
        await asyncio.sleep(0)
    return transport


REQUESTS = [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /empty HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}",
    b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /empty HTTP/1.1\r\nHost: x\r\n\r\n",  # pipelined
]


@pytest.mark.parametrize("request_bytes", REQUESTS)
def test_the_bytes_written_are_uvicorn_s_and_each_answer_goes_in_one_write(request_bytes):
    stock = asyncio.run(exchange(HttpToolsProtocol, request_bytes))
    ours = asyncio.run(exchange(OneWriteHttpToolsProtocol, request_bytes))
    assert b"".join(ours.writes) == b"".join(stock.writes)
    assert ours.closed == stock.closed
    answers = b"".join(ours.writes).count(b"HTTP/1.1 200")
    streamed = request_bytes.startswith(b"GET /stream")
    continued = b"100-continue" in request_bytes
    assert len(ours.writes) == answers + (1 if streamed else 0) + (1 if continued else 0)


def test_an_app_that_fails_after_the_head_closes_the_connection_without_writing_it():
    ours = asyncio.run(exchange(OneWriteHttpToolsProtocol, b"GET /fails HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert ours.closed and ours.writes == []
