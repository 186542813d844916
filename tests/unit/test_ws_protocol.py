"""The server protocol of `solo api` (api/ws_protocol.py): uvicorn's, keeping less per idle socket."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import pytest
import uvicorn
import websockets
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.exceptions import InvalidStatus

from solo.api.ws_protocol import (
    DETACH_EXTENSION,
    SEND_ENCODED_EXTENSION,
    WRITABLE_EXTENSION,
    LeanWebSocketProtocol,
    _Inbox,
    _Writable,
    encoded_frame,
)


@contextlib.asynccontextmanager
async def served(app: Starlette, *, deflate: bool = False) -> AsyncIterator[tuple[uvicorn.Server, int]]:
    """`app` under uvicorn with solo's server protocol, on a free loopback port: (server, port)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, ws=LeanWebSocketProtocol, log_level="warning", ws_per_message_deflate=deflate)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        yield server, port
    finally:
        server.should_exit = True
        await serving


async def echoes(ws) -> None:
    """A short message, one of many frames' worth, and a short one again, each echoed back."""
    for text in ("a", "b" * 100_000, "c"):
        await ws.send(text)
        assert await ws.recv() == text


def test_the_inbox_hands_its_one_reader_what_was_put_in_order():
    async def scenario():
        inbox = _Inbox()
        assert inbox.empty()
        reader = asyncio.create_task(inbox.get())
        await asyncio.sleep(0)
        inbox.put_nowait(1)
        inbox.put_nowait(2)
        assert await reader == 1
        assert not inbox.empty()
        assert await inbox.get() == 2
        assert inbox.empty()
        cancelled = asyncio.create_task(inbox.get())
        await asyncio.sleep(0)
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        inbox.put_nowait(3)  # nothing lost to the cancelled reader
        assert await inbox.get() == 3

    asyncio.run(scenario())


def test_writability_releases_every_waiter_when_set_again():
    async def scenario():
        writable = _Writable()
        assert writable.is_set() and await writable.wait()
        writable.clear()
        waiters = [asyncio.create_task(writable.wait()) for _ in range(3)]
        await asyncio.sleep(0)
        assert not any(w.done() for w in waiters)
        writable.set()
        assert await asyncio.gather(*waiters) == [True, True, True]

    asyncio.run(scenario())


def test_under_uvicorn_it_echoes_answers_refusals_in_http_and_lets_the_handshake_go():
    seen: dict[str, object] = {}

    async def endpoint(websocket: WebSocket) -> None:
        if websocket.query_params.get("refuse"):
            await websocket.send_denial_response(JSONResponse({"error": {"code": "nope"}}, status_code=404))
            return
        await websocket.accept()
        seen["writable"] = websocket.scope["extensions"][WRITABLE_EXTENSION]()
        try:
            while True:
                await websocket.send_text(await websocket.receive_text())
        except WebSocketDisconnect:
            pass

    app = Starlette(routes=[WebSocketRoute("/ws", endpoint)])

    async def scenario():
        async with served(app) as (server, port):
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as ws:
                await echoes(ws)
                (protocol,) = [c for c in server.server_state.connections if isinstance(c, LeanWebSocketProtocol)]
                assert not hasattr(protocol, "request") and not hasattr(protocol, "response")
                assert seen["writable"] is True
            with pytest.raises(InvalidStatus) as refused:
                async with websockets.connect(f"ws://127.0.0.1:{port}/ws?refuse=1"):
                    pass
            assert refused.value.response.status_code == 404
            assert b'"nope"' in refused.value.response.body

    asyncio.run(scenario())


def test_a_detached_socket_stays_open_after_the_application_returns_and_gets_its_events_by_callback():
    events: list[dict] = []
    sockets: list[WebSocket] = []
    resumes: list = []

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        sockets.append(websocket)

        def on_event(message: dict) -> None:
            events.append(message)
            if message["type"] == "websocket.receive":
                asyncio.get_running_loop().create_task(websocket.send_text(message["text"]))
                resumes[0]()  # taken: the client may send more

        resume_reading, _send = websocket.scope["extensions"][DETACH_EXTENSION](on_event)
        resumes.append(resume_reading)

    app = Starlette(routes=[WebSocketRoute("/ws", endpoint)])

    async def scenario():
        async with served(app) as (server, port):
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as ws:
                await echoes(ws)
                assert not server.server_state.tasks  # the application returned: no task per open socket
                (protocol,) = [c for c in server.server_state.connections if isinstance(c, LeanWebSocketProtocol)]
                assert not hasattr(protocol, "scope")  # the handshake's scope went with the ASGI call
            for _ in range(100):
                if events and events[-1]["type"] == "websocket.disconnect":
                    break
                await asyncio.sleep(0.01)
            assert [e.get("text") for e in events[:3]] == ["a", "b" * 100_000, "c"]
            assert events[3]["type"] == "websocket.disconnect" and events[3]["code"] == 1000

    asyncio.run(scenario())


@pytest.mark.parametrize("deflate", [False, True])
def test_a_frame_encoded_once_goes_out_in_order_with_sends_or_is_refused(deflate):
    """What the gateway does for a broadcast: one encoded frame for every socket, written at once.

    With per-message compression negotiated the frame would differ per socket: the protocol
    refuses it and the caller sends as usual.
    """
    outcomes: list[bool] = []
    scopes: list[dict] = []

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        scopes.append(websocket.scope)
        send_encoded = websocket.scope["extensions"][SEND_ENCODED_EXTENSION]
        for value in ("one", b"\x00two", "three" * 30_000):  # a short text, bytes, a long text (64-bit length)
            written = send_encoded(encoded_frame(value))
            outcomes.append(written)
            if not written:
                await (websocket.send_text(value) if isinstance(value, str) else websocket.send_bytes(value))
            await websocket.send_text("between")
        try:
            await websocket.receive_text()
        except WebSocketDisconnect:
            outcomes.append(send_encoded(encoded_frame("after")))

    app = Starlette(routes=[WebSocketRoute("/ws", endpoint)])

    async def scenario():
        async with served(app, deflate=deflate) as (server, port):
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws", max_size=None) as ws:
                got = [await ws.recv() for _ in range(6)]
            assert got == ["one", "between", b"\x00two", "between", "three" * 30_000, "between"]
            while len(outcomes) < 4:
                await asyncio.sleep(0.01)
        return outcomes

    assert asyncio.run(scenario()) == [not deflate] * 3 + [False]  # never after the connection is gone
    assert SEND_ENCODED_EXTENSION not in scopes[0]["extensions"]  # no cycle left through the scope
