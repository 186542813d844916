"""The embedded Redis of `solo dev` (fakeredis over TCP) delivers replies of any size, as a real Redis does."""

from __future__ import annotations

import redis

MIB = 1024 * 1024


def test_a_reply_larger_than_the_socket_buffers_arrives_whole(embedded_url):
    # Given: a list entry larger than a socket's send and receive buffers together (4 + 32 MiB on Linux)
    value = b"r" * (40 * MIB)
    client = redis.Redis.from_url(embedded_url)
    client.rpush("replies", value)

    # When: it is popped, as the API pops a call's outcome
    popped = client.blpop(["replies"], timeout=1)

    # Then: it arrives whole on the same connection, which goes on serving
    assert popped is not None and popped[1] == value
    assert client.llen("replies") == 0
    assert client.ping()
    client.close()
