"""The Python clients (api.client) against the real app, on both backends.

The app runs under uvicorn in a thread on a free 127.0.0.1 port, with the
object host in-process, so the clients speak real HTTP. One test also drives
the sync client through Starlette's TestClient transport (no socket).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import uvicorn

from solo.api.client import AsyncClient, CallError, Client
from solo.testing.inprocess import InProcessSystem

POLL_LIMIT_S = 20.0  # a bound on polling loops, not a timing assertion


def unique() -> str:
    return uuid.uuid4().hex


@contextlib.contextmanager
def serving(system: InProcessSystem) -> Iterator[str]:
    """Run the system's app under uvicorn in a thread; yields its base URL."""
    # IPPROTO_TCP explicitly: asyncio turns on TCP_NODELAY only for sockets whose proto says TCP,
    # and without it every response waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(system.app, lifespan="on", log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True)
    system.start()
    thread.start()
    try:
        deadline = time.monotonic() + POLL_LIMIT_S
        while not server.started:
            assert thread.is_alive(), "uvicorn exited during start-up"
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=POLL_LIMIT_S)
        sock.close()
        system.stop()


@pytest.fixture
def base_url(settings, redis_client, async_redis_client) -> Iterator[str]:
    system = InProcessSystem(settings, redis_client, async_redis_client)
    with serving(system) as url:
        yield url


def wait_for(status_of, call_id: str) -> dict:
    deadline = time.monotonic() + POLL_LIMIT_S
    while True:
        status = status_of(call_id)
        if status["status"] in ("done", "failed"):
            return status
        assert time.monotonic() < deadline, f"call {call_id} did not finish: {status}"
        time.sleep(0.02)


async def async_wait_for(client: AsyncClient, call_id: str) -> dict:
    deadline = time.monotonic() + POLL_LIMIT_S
    while True:
        status = await client.call_status(call_id)
        if status["status"] in ("done", "failed"):
            return status
        assert time.monotonic() < deadline, f"call {call_id} did not finish: {status}"
        await asyncio.sleep(0.02)


def test_client(base_url):
    name = unique()
    with Client(base_url, timeout_s=30) as client:
        counter = client.object("Counter", name)
        # Attribute-style and explicit calls.
        assert counter.increment(by=2) == 2
        assert counter.increment() == 3
        assert counter.call("get") == 3

        # Unknown method, bad arguments, UserError, a method's own exception.
        with pytest.raises(CallError) as info:
            counter.no_such_method()
        assert (info.value.status, info.value.code) == (404, "unknown_method")
        with pytest.raises(CallError) as info:
            counter.increment(by="two")
        assert (info.value.status, info.value.code) == (422, "invalid_arguments")
        with pytest.raises(CallError) as info:
            client.object("NoSuchClass", name).anything()
        assert (info.value.status, info.value.code) == (404, "unknown_class")
        with pytest.raises(CallError) as info:
            client.object("Counter", " " + name).increment()
        assert (info.value.status, info.value.code) == (400, "invalid_name")

        fragile = client.object("Fragile", name)
        assert fragile.add(text="a") == 1
        with pytest.raises(CallError) as info:
            fragile.add_then_fail(text="b", kind="user")
        assert (info.value.status, info.value.code) == (409, "user_error")
        assert info.value.message == "conflict: try later"
        assert info.value.call_id
        with pytest.raises(CallError) as info:
            fragile.add_then_fail(text="b", kind="crash")
        assert (info.value.status, info.value.code) == (500, "method_error")
        assert info.value.error["type"] == "ValueError"
        assert "boom" not in info.value.message  # in the worker's log, not the answer (SOLO_DEBUG is off)
        assert fragile.count() == 1

        # Idempotency keys: the second call returns the recorded result.
        key = f"k-{unique()}"
        assert counter.call("increment", by=10, idempotency_key=key) == 13
        assert counter.call("increment", by=10, idempotency_key=key) == 13
        assert counter.get() == 13

        # Queued calls and their status.
        call_id = counter.call_async("increment", by=5)
        status = wait_for(client.call_status, call_id)
        assert status == {"call_id": call_id, "status": "done", "result": 18}
        failed = wait_for(client.call_status, fragile.call_async("add_then_fail", text="c"))
        assert failed["status"] == "failed"
        assert failed["error"]["code"] == "method_error"
        with pytest.raises(CallError) as info:
            client.call_status(unique())
        assert (info.value.status, info.value.code) == (404, "call_not_found")

        # Metadata.
        meta = counter.info()
        assert meta["name"] == name and meta["class"] == "Counter" and meta["active"] is True
        with pytest.raises(CallError) as info:
            client.object("Counter", unique()).info()
        assert (info.value.status, info.value.code) == (404, "object_not_found")

        # Private attributes are not remote methods.
        with pytest.raises(AttributeError):
            counter._secret  # noqa: B018


def test_async_client(base_url):
    name = unique()

    async def scenario() -> None:
        async with AsyncClient(base_url, timeout_s=30) as client:
            counter = client.object("Counter", name)
            assert await counter.increment(by=2) == 2
            assert await counter.call("increment") == 3

            with pytest.raises(CallError) as info:
                await counter.no_such_method()
            assert (info.value.status, info.value.code) == (404, "unknown_method")
            with pytest.raises(CallError) as info:
                await client.object("Fragile", name).add_then_fail(text="x", kind="user")
            assert (info.value.status, info.value.code) == (409, "user_error")
            assert await client.object("Fragile", name).count() == 0

            key = f"k-{unique()}"
            assert await counter.call("increment", by=10, idempotency_key=key) == 13
            assert await counter.call("increment", by=10, idempotency_key=key) == 13

            call_id = await counter.call_async("increment", by=5)
            status = await async_wait_for(client, call_id)
            assert status == {"call_id": call_id, "status": "done", "result": 18}
            with pytest.raises(CallError) as info:
                await client.call_status(unique())
            assert (info.value.status, info.value.code) == (404, "call_not_found")

            # Concurrent calls through one client all run, one at a time.
            other = client.object("Counter", unique())
            results = await asyncio.gather(*(other.increment() for _ in range(20)))
            assert sorted(results) == list(range(1, 21))

            meta = await counter.info()
            assert meta["name"] == name and meta["active"] is True

    asyncio.run(scenario())


def test_client_over_a_custom_transport(settings, redis_client, async_redis_client):
    """`transport=` reaches httpx: here Starlette's TestClient transport, without a socket."""
    system = InProcessSystem(settings, redis_client, async_redis_client)
    name = unique()
    with system.running() as http:
        client = Client("http://testserver", transport=http._transport)
        try:
            assert client.object("Counter", name).increment(by=4) == 4
            with pytest.raises(CallError) as info:
                client.object("Counter", name).missing()
            assert info.value.code == "unknown_method"
        finally:
            client.close()
