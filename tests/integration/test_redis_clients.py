"""solo's Redis clients (objects/coordination/redis_clients.py): the short path for single commands
keeps the stock path's promises. A connection the server killed, before or during a command, is
replaced and the command still answers; a reply error leaves the connection in use; a connection
with an unread reply is never read for another command's answer; a waiting checkout is woken.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest
import redis
import redis.asyncio

from solo.objects.coordination.redis_clients import AsyncSoloRedis, async_client, sync_client


@pytest.fixture
def admin(real_redis_url: str, key_prefix: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(real_redis_url, socket_timeout=10)
    yield client
    keys = list(client.scan_iter(match=f"{key_prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()


def named(client: redis.Redis | redis.asyncio.Redis, name: str) -> None:
    """Every connection the client makes from now on is called `name` (CLIENT SETNAME)."""
    client.connection_pool.connection_kwargs["client_name"] = name


def blocked_client(admin: redis.Redis, name: str, before: set[int]) -> int:
    """The id of the connection called `name` blocked in BLPOP, not among `before`."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        listed = admin.client_list()
        ids = {int(e["id"]) for e in listed if e.get("name") == name and e.get("cmd") == "blpop"} - before
        if ids:
            return max(ids)
        time.sleep(0.01)
    raise AssertionError("no client blocked in BLPOP")


def test_commands_reuse_one_connection_and_a_reply_error_keeps_it(real_redis_url, admin, key_prefix):
    client = sync_client(real_redis_url)
    key = f"{key_prefix}:text"
    client.set(key, "1")
    first = client.client_id()
    assert [client.get(key) for _ in range(5)] == [b"1"] * 5
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        client.lpush(key, "x")
    assert client.client_id() == first
    assert len(client.connection_pool._available_connections) == 1
    client.close()


def test_a_command_after_the_server_killed_the_idle_connection_is_answered(real_redis_url, admin, key_prefix):
    client = sync_client(real_redis_url)
    key = f"{key_prefix}:text"
    client.set(key, "1")
    killed = client.client_id()
    assert admin.client_kill_filter(_id=killed) == 1
    assert client.get(key) == b"1"
    assert client.client_id() != killed
    client.close()


def test_a_command_whose_connection_is_killed_while_it_waits_is_sent_again_and_answered(
    real_redis_url, admin, key_prefix
):
    client = sync_client(real_redis_url)
    named(client, key_prefix)
    key = f"{key_prefix}:list"
    client.ping()  # one idle connection in the pool: the BLPOP takes the short path
    answers: list[object] = []
    waiter = threading.Thread(target=lambda: answers.append(client.blpop([key], timeout=10)))
    waiter.start()
    killed = blocked_client(admin, key_prefix, before=set())
    assert admin.client_kill_filter(_id=killed) == 1
    blocked_client(admin, key_prefix, before={killed})  # sent again on a fresh connection
    admin.rpush(key, "item")
    waiter.join(timeout=15)
    assert answers == [(key.encode(), b"item")]
    client.close()


def test_an_unread_reply_on_an_idle_connection_is_never_taken_for_the_next_answer(real_redis_url, admin, key_prefix):
    client = sync_client(real_redis_url)
    key = f"{key_prefix}:text"
    client.set(key, "value")
    pool = client.connection_pool
    dirty = pool.get_connection()
    dirty.send_command("ECHO", "stale")  # its reply is left unread
    assert dirty.can_read(timeout=5)
    pool.release(dirty)
    assert client.get(key) == b"value"
    assert client.echo("fresh") == b"fresh"
    client.close()


def test_async_commands_are_answered_after_a_kill_before_and_during_a_command(real_redis_url, admin, key_prefix):
    key, queue = f"{key_prefix}:text", f"{key_prefix}:list"

    async def scenario() -> None:
        client = async_client(real_redis_url)
        named(client, key_prefix)
        await client.set(key, "1")
        idle = await client.client_id()
        assert await client.client_id() == idle  # one connection, reused
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            await client.lpush(key, "x")
        assert await client.client_id() == idle
        assert admin.client_kill_filter(_id=idle) == 1
        assert await client.get(key) == b"1"

        waiting = asyncio.create_task(client.blpop([queue], timeout=10))
        killed = await asyncio.to_thread(blocked_client, admin, key_prefix, set())
        assert admin.client_kill_filter(_id=killed) == 1
        await asyncio.to_thread(blocked_client, admin, key_prefix, {killed})
        admin.rpush(queue, "item")
        assert await asyncio.wait_for(waiting, 15) == (queue.encode(), b"item")
        await client.aclose()

    asyncio.run(scenario())


def test_async_commands_beyond_the_pools_size_wait_for_a_connection_and_are_all_answered(real_redis_url, key_prefix):
    key = f"{key_prefix}:text"

    async def scenario() -> list[object]:
        client = async_client(real_redis_url, max_connections=1)
        await client.set(key, "1")
        answers = await asyncio.wait_for(asyncio.gather(*(client.get(key) for _ in range(50))), 8)
        assert len(client.connection_pool._in_use_connections) == 0
        await client.delete(key)
        await client.aclose()
        return list(answers)

    assert asyncio.run(scenario()) == [b"1"] * 50


def test_a_script_runs_by_sha_loads_itself_when_the_server_lacks_it_and_goes_into_a_pipeline(
    real_redis_url, admin, key_prefix
):
    client = sync_client(real_redis_url)
    key = f"{key_prefix}:text"
    script = client.register_script("redis.call('set', KEYS[1], ARGV[1]) return redis.call('get', KEYS[1])")
    right = script.sha
    assert script(keys=[key], args=["a"]) == b"a"
    script.sha = "0" * 40  # a script the server does not know (as after a restart: SCRIPT FLUSH)
    assert script(keys=[key], args=["b"]) == b"b"
    assert script.sha == right
    pipe = client.pipeline(transaction=False)
    script(keys=[key], args=["c"], client=pipe)
    pipe.get(key)
    assert pipe.execute() == [b"c", b"c"]
    client.close()


def test_an_async_script_runs_by_sha_and_loads_itself_when_the_server_lacks_it(real_redis_url, admin, key_prefix):
    key = f"{key_prefix}:text"

    async def scenario() -> None:
        client = async_client(real_redis_url)
        script = client.register_script("redis.call('set', KEYS[1], ARGV[1]) return redis.call('get', KEYS[1])")
        right = script.sha
        assert await script(keys=[key], args=["a"]) == b"a"
        script.sha = "0" * 40
        assert await script(keys=[key], args=["b"]) == b"b"
        assert script.sha == right
        async with client.pipeline(transaction=False) as pipe:
            await script(keys=[key], args=["c"], client=pipe)
            pipe.get(key)
            assert await pipe.execute() == [b"c", b"c"]
        await client.aclose()

    asyncio.run(scenario())


def test_async_commands_in_one_round_trip_answer_in_order_with_each_ones_error_in_its_place(
    real_redis_url, admin, key_prefix
):
    key, sha = f"{key_prefix}:text", "0" * 40

    async def scenario() -> None:
        client = async_client(real_redis_url)
        named(client, key_prefix)
        await client.set(key, "1")
        idle = await client.client_id()
        assert isinstance(client, AsyncSoloRedis)
        many = client.execute_many
        replies = await many([("GET", key), ("LPUSH", key, "x"), ("EVALSHA", sha, 1, key), ("INCRBY", key, 2)])
        assert replies[0] == b"1" and replies[3] == 3
        assert isinstance(replies[1], redis.ResponseError) and "WRONGTYPE" in str(replies[1])
        assert isinstance(replies[2], redis.exceptions.NoScriptError)
        assert await client.client_id() == idle  # the errors were read whole: the connection is kept
        assert admin.client_kill_filter(_id=idle) == 1  # killed while idle: the next round trip still answers
        assert await many([("GET", key), ("GET", key)]) == [b"3", b"3"]
        await client.aclose()

    asyncio.run(scenario())


def test_async_commands_in_one_round_trip_beyond_the_pools_size_take_the_stock_pipeline(real_redis_url, key_prefix):
    key = f"{key_prefix}:text"

    async def scenario() -> list[object]:
        client = async_client(real_redis_url, max_connections=1)
        await client.set(key, "1")
        assert isinstance(client, AsyncSoloRedis)
        many = client.execute_many
        answers = await asyncio.wait_for(asyncio.gather(*(many([("GET", key), ("STRLEN", key)]) for _ in range(20))), 8)
        assert len(client.connection_pool._in_use_connections) == 0
        await client.delete(key)
        await client.aclose()
        return list(answers)

    assert asyncio.run(scenario()) == [[b"1", 1]] * 20
