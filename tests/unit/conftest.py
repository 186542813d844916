"""Fixtures of the unit tier."""

from __future__ import annotations

import pytest

from solo.cli.dev import embedded_redis, free_port, serve_in_background


@pytest.fixture
def embedded_url():
    """`solo dev`'s embedded Redis (fakeredis over TCP) on a free port of its own."""
    port = free_port()
    server = embedded_redis(port)
    serve_in_background(server)
    yield f"redis://127.0.0.1:{port}/0"
    server.shutdown()
    server.server_close()
