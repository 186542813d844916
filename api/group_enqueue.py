"""Group enqueue: the calls this process's requests enqueue in one turn of the event loop, in one round trip.

Requests whose bytes arrive together are parsed in the same turn of the loop, and each
runs up to its enqueue without waiting on anything. The first enqueue of a turn schedules
a flush at the turn's end (a task: no timer, nothing waits past the turn); the flush
sends what gathered by then as one pipeline of enqueue.lua calls (on the Redis client's
short path, ADR 0020), and each request gets
its own answer or its own error. A lone enqueue goes as a plain script call, as it would
alone. Each script still runs atomically and in the order the requests came; the pipeline
shares only the round trip and redis-py's work per command (docs/adr/0016).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from typing import Any

import redis.asyncio
from redis.exceptions import NoScriptError

from solo.objects.calls import Call
from solo.objects.coordination import scripts
from solo.objects.coordination.mailbox import AsyncMailbox, Enqueued
from solo.objects.coordination.redis_clients import AsyncSoloRedis

MAX_GROUP = 256  # enqueues per pipeline at most; a larger turn's go in several, side by side


class GroupEnqueue:
    def __init__(self, client: redis.asyncio.Redis, mailbox: AsyncMailbox) -> None:
        self._redis = client
        self._mailbox = mailbox  # a lone enqueue's path, and the one that loads the script if Redis lost it
        self._sha = client.register_script(scripts.source("enqueue")).sha
        # solo's client sends the group on its short path (objects/coordination/redis_clients.py)
        many = client.execute_many if isinstance(client, AsyncSoloRedis) else None
        self._execute = many or functools.partial(_pipeline, client)
        self._pending: list[tuple[Call, asyncio.Future[Enqueued]]] = []
        self._sending: set[asyncio.Task[None]] = set()  # strong references: the loop keeps only weak ones
        self.groups = 0  # round trips made, and the enqueues they carried: a test's window on the grouping
        self.grouped = 0

    async def enqueue(self, call: Call) -> Enqueued:
        """As AsyncMailbox.enqueue: the decision, or the error (MailboxFull, IdempotencyKeyReused, RedisError)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Enqueued] = loop.create_future()
        if not self._pending:
            self._keep(asyncio.ensure_future(self._flush()))
        self._pending.append((call, future))
        return await future

    async def _flush(self) -> None:
        """The task the turn's first enqueue starts: its first step runs when the turn ends and sends what
        gathered by then. A task, not a callback that starts one: the script goes out one turn of the
        event loop earlier (docs/adr/0022)."""
        pending, self._pending = self._pending, []
        for start in range(MAX_GROUP, len(pending), MAX_GROUP):  # a larger turn's other groups, side by side
            self._keep(asyncio.ensure_future(self._send(pending[start : start + MAX_GROUP])))
        await self._send(pending[:MAX_GROUP])

    def _keep(self, task: asyncio.Task[None]) -> None:
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, group: Sequence[tuple[Call, asyncio.Future[Enqueued]]]) -> None:
        self.groups += 1
        self.grouped += len(group)
        if len(group) == 1:
            call, future = group[0]
            try:
                _settle(future, await self._mailbox.enqueue(call))
            except Exception as exc:
                _fail(future, exc)
            return
        config = self._mailbox.config
        commands = []
        for call, _ in group:
            keys = config.enqueue_keys(call)
            commands.append(("EVALSHA", self._sha, len(keys), *keys, *config.enqueue_args(call)))
        try:
            replies = await self._execute(commands)
        except Exception as exc:  # the round trip failed (after redis-py's retries): every enqueue with it
            for _, future in group:
                _fail(future, exc)
            return
        for (call, future), reply in zip(group, replies, strict=True):
            try:
                if isinstance(reply, NoScriptError):  # Redis lost its scripts (a restart): this one did not run
                    _settle(future, await self._mailbox.enqueue(call))
                elif isinstance(reply, Exception):
                    _fail(future, reply)
                else:
                    _settle(future, config.parse_enqueued(reply, call))
            except Exception as exc:
                _fail(future, exc)


async def _pipeline(client: redis.asyncio.Redis, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
    """redis-py's pipeline without a transaction, for a client without execute_many (fakeredis in tests)."""
    pipe = client.pipeline(transaction=False)
    for args in commands:
        pipe.execute_command(*args)
    return list(await pipe.execute(raise_on_error=False))


def _settle(future: asyncio.Future[Enqueued], enqueued: Enqueued) -> None:
    if not future.done():  # its request may have been cancelled meanwhile
        future.set_result(enqueued)


def _fail(future: asyncio.Future[Enqueued], exc: Exception) -> None:
    if not future.done():
        future.set_exception(exc)
