"""A bare Starlette WebSocket echo endpoint with solo's route shape: the floor for WebSockets.

    .venv/bin/python -m uvicorn bench.bare_ws_app:app --port P --log-level warning --no-access-log

Each text message is sent back as it came, with no Redis, no worker and no database behind it.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            await websocket.send_text(await websocket.receive_text())
    except WebSocketDisconnect:
        pass


app = Starlette(routes=[WebSocketRoute("/v1/objects/{class_name}/{name}/ws", echo)])
