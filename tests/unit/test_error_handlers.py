"""The API's handlers of unavailable services answer a WebSocket upgrade as they answer a request."""

from __future__ import annotations

import asyncio
import json

import redis
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.websockets import WebSocket

from solo.api.errors import database_error_handler, redis_error_handler


def upgrade() -> WebSocket:
    scope = {"type": "websocket", "path": "/v1/objects/Room/a/ws", "headers": [], "app": Starlette()}
    return WebSocket(scope, receive=None, send=None)  # type: ignore[arg-type]


def test_redis_or_the_database_away_during_an_upgrade_is_a_503_not_a_crash_of_the_handler():
    for handler, exc in (
        (redis_error_handler, redis.ConnectionError("No connection available.")),
        (database_error_handler, sa.exc.OperationalError("SELECT 1", {}, Exception("gone"))),
    ):
        response = asyncio.run(handler(upgrade(), exc))  # type: ignore[arg-type]
        assert response.status_code == 503
        assert json.loads(response.body)["error"]["code"] == "unavailable"
