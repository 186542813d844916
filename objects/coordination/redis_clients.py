"""Redis clients built from settings, with the timeouts and retries solo relies on.

Retries: a command that fails on a dead connection (Redis restarted, idle
connection dropped) is retried on a fresh one, a few times with backoff. Every
script solo runs is safe to repeat: an enqueue repeated after a lost reply
carries the same call id, which the object's exactly-once record absorbs.

The short path (ADR 0012): redis-py's own path for one command costs about
twice the command itself in client CPU (metrics hooks that are switched off,
events, a retry wrapper around every checkout and every command). So a single
command takes an idle, connected, clean connection straight from the pool,
sends, reads and puts it back; anything else (no idle connection, a pool of
another process, a connection error on the way) goes the stock path, whose
retries then apply. Pub/sub is untouched.

The asyncio client (the API's) also sends several commands in one round trip the same way
(`AsyncSoloRedis.execute_many`, for api/group_enqueue.py), and packs commands whose
arguments are all text or integers with hiredis' C packer where hiredis is installed
(ADR 0020): the same bytes as redis-py's packer, in a seventh of the time.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import redis
import redis.asyncio
from redis.backoff import ExponentialBackoff
from redis.commands.core import AsyncScript, Script
from redis.exceptions import ConnectionError, NoScriptError, ResponseError, TimeoutError

# Blocking pops wait at most 1 s; the socket timeout must stay well above that.
SOCKET_TIMEOUT_S = 10
_RETRIES = 3

# What the stock path retries on a fresh connection (redis-py's Retry default).
_RETRIED = (ConnectionError, TimeoutError)


_hiredis_pack: Callable[[tuple[Any, ...]], bytes] | None
try:
    from hiredis import pack_command as _hiredis_pack
except ImportError:  # hiredis is optional (ADR 0005): redis-py's packer then
    _hiredis_pack = None

# Arguments hiredis packs to the very bytes redis-py's packer makes (UTF-8 text, decimal integers);
# bool is refused by redis-py, floats are formatted differently, a command name may hold spaces.
_PLAIN_ARGUMENTS = frozenset((str, bytes, int))


def _packed(args: Sequence[Any]) -> bytes | None:
    """The command in Redis' protocol by hiredis, or None for redis-py's packer to make it."""
    if _hiredis_pack is None or not isinstance(args[0], str) or " " in args[0]:
        return None
    if not _PLAIN_ARGUMENTS.issuperset(map(type, args)):
        return None
    return _hiredis_pack(tuple(args))


def _backoff() -> ExponentialBackoff:
    return ExponentialBackoff(cap=1.0, base=0.05)


class _Script(Script):
    """EVALSHA straight to the client's execute_command; the stock call for a pipeline or an unknown script."""

    registered_client: Any

    def __call__(self, keys: Any = None, args: Any = None, client: Any = None) -> Any:
        stock: Any = super()
        if client is not None and client is not self.registered_client:
            return stock.__call__(keys, args, client)
        keys, registered_client = keys or (), self.registered_client
        try:
            return registered_client.execute_command("EVALSHA", self.sha, len(keys), *keys, *(args or ()))
        except NoScriptError:
            return stock.__call__(keys, args, client)


class _AsyncScript(AsyncScript):
    async def __call__(self, keys: Any = None, args: Any = None, client: Any = None) -> Any:
        stock: Any = super()
        if client is not None and client is not self.registered_client:
            return await stock.__call__(keys, args, client)
        keys, registered_client = keys or (), self.registered_client
        try:
            return await registered_client.execute_command("EVALSHA", self.sha, len(keys), *keys, *(args or ()))
        except NoScriptError:
            return await stock.__call__(keys, args, client)


class SoloRedis(redis.Redis):
    """redis.Redis whose single commands take the short path over its ConnectionPool."""

    def register_script(self, script: Any) -> Script:
        return _Script(self, script)

    def execute_command(self, *args: Any, **options: Any) -> Any:
        stock: Any = super()
        connection = self._take_idle()
        if connection is None:
            return stock.execute_command(*args, **options)
        try:
            return self._run(connection, args, options)
        except _RETRIED:
            return stock.execute_command(*args, **options)

    def _take_idle(self) -> Any:
        """An idle connection ready to send, marked in use; None sends the command the stock way."""
        pool = self.connection_pool
        if self.connection is not None or type(pool) is not redis.ConnectionPool or pool.pid != os.getpid():
            return None
        with pool._lock:
            if not pool._available_connections:
                return None
            connection = pool._available_connections.pop()
            pool._in_use_connections.add(connection)
        try:
            # The stock checkout's test: unread bytes, or a socket the server closed.
            ready = connection._sock is not None and not connection.should_reconnect() and not connection.can_read()
        except _RETRIED:
            ready = False
        if not ready:
            connection.disconnect()
            pool.release(connection)
            return None
        return connection

    def _run(self, connection: Any, args: tuple[Any, ...], options: dict[str, Any]) -> Any:
        pool = self.connection_pool
        parse: Any = self.parse_response
        try:
            connection.send_command(*args)
            return parse(connection, args[0], **options)
        except ResponseError:
            raise  # the whole reply was read: the connection is fine
        except BaseException:
            connection.disconnect()  # a reply may be on its way: never reuse this socket
            raise
        finally:
            with pool._lock:
                pool._in_use_connections.discard(connection)
                pool._available_connections.append(connection)


class _BlockingPool(redis.asyncio.BlockingConnectionPool):
    """Counts checkouts on the stock path, so a short-path release knows when one may be waiting."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stock_checkouts = 0

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        stock: Any = super()
        self.stock_checkouts += 1
        try:
            return await stock.get_connection(*args, **kwargs)
        finally:
            self.stock_checkouts -= 1


class AsyncSoloRedis(redis.asyncio.Redis):
    """redis.asyncio.Redis whose single commands take the short path over its blocking pool.

    The pool's lists change only between awaits here, so no lock is taken; a
    release while a stock checkout may be waiting goes the stock way, which wakes it.
    """

    def register_script(self, script: Any) -> Any:  # an AsyncScript (redis-py types it Script)
        return _AsyncScript(self, script)

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        stock: Any = super()
        connection = await self._take_idle()
        if connection is None:
            return await stock.execute_command(*args, **options)
        try:
            return await self._run(connection, args, options)
        except _RETRIED:
            return await stock.execute_command(*args, **options)

    async def _take_idle(self) -> Any:
        pool = self.connection_pool
        if self.connection is not None or not isinstance(pool, _BlockingPool) or not pool._available_connections:
            return None
        connection: Any = pool._available_connections.pop()
        pool._in_use_connections.add(connection)
        try:
            ready = connection.is_connected and not connection.should_reconnect() and not await connection.can_read()
        except _RETRIED:
            ready = False
        if not ready:
            await connection.disconnect()
            await pool.release(connection)
            return None
        return connection

    async def _run(self, connection: Any, args: tuple[Any, ...], options: dict[str, Any]) -> Any:
        try:
            packed = _packed(args)
            if packed is None:
                await connection.send_command(*args)
            else:
                await connection.send_packed_command(packed)
            return await self.parse_response(connection, args[0], **options)
        except ResponseError:
            raise
        except BaseException:
            await connection.disconnect(nowait=True)
            raise
        finally:
            await self._put_back(connection)

    async def _put_back(self, connection: Any) -> None:
        pool = self.connection_pool
        assert isinstance(pool, _BlockingPool)
        if pool.stock_checkouts:
            await pool.release(connection)
        else:
            pool._in_use_connections.remove(connection)
            pool._available_connections.append(connection)

    async def execute_many(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Commands in one round trip, as a pipeline without a transaction: each one's reply, or its
        ResponseError, in order. The short path if an idle connection is ready, else redis-py's pipeline
        (with its retries: every command solo sends is safe to repeat)."""
        connection = await self._take_idle()
        if connection is not None:
            try:
                return await self._run_many(connection, commands)
            except _RETRIED:
                pass
        pipe = self.pipeline(transaction=False)
        for args in commands:
            pipe.execute_command(*args)
        return list(await pipe.execute(raise_on_error=False))

    async def _run_many(self, connection: Any, commands: Sequence[Sequence[Any]]) -> list[Any]:
        try:
            packed = [_packed(args) for args in commands]
            if None in packed:
                await connection.send_packed_command(connection.pack_commands(commands))
            else:
                await connection.send_packed_command(b"".join(packed))  # type: ignore[arg-type]
            replies: list[Any] = []
            for args in commands:
                try:
                    replies.append(await self.parse_response(connection, args[0]))
                except ResponseError as exc:  # the whole reply was read: the next one follows
                    replies.append(exc)
            return replies
        except BaseException:
            await connection.disconnect(nowait=True)  # replies may be on their way: never reuse this socket
            raise
        finally:
            await self._put_back(connection)


def sync_client(url: str) -> redis.Redis:
    from redis.retry import Retry

    return SoloRedis.from_url(
        url,
        socket_timeout=SOCKET_TIMEOUT_S,
        socket_connect_timeout=5,
        health_check_interval=30,
        retry=Retry(_backoff(), _RETRIES),
    )


def async_client(url: str, max_connections: int = 512) -> redis.asyncio.Redis:
    """A blocking pool: under a burst, requests wait for a connection instead of failing."""
    from redis.asyncio.retry import Retry

    pool = _BlockingPool.from_url(
        url,
        max_connections=max_connections,
        timeout=10,
        socket_timeout=SOCKET_TIMEOUT_S,
        socket_connect_timeout=5,
        health_check_interval=30,
        retry=Retry(_backoff(), _RETRIES),
    )
    return AsyncSoloRedis(connection_pool=pool)
