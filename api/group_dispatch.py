"""Group dispatch: the activations this process's requests ask for go out together, one send at a time.

A call to an object nobody holds asks for an activation (enqueue.lua's decision). The first one
asked for while no send is under way starts a sender, whose first step runs when the event loop's
turn ends: it hands every object id gathered by then to the dispatcher at once, on one thread.
While that send is out, the ids asked for gather, and the sender takes them all as soon as it is
back: an idle API sends each alone and at once, a busy one sends many per message, with no timer.
Dramatiq's dispatcher puts them in one message (workers/broker.py), and the worker that takes it
takes their leases and claims their first calls in one round trip (ObjectHost.activate_many): one
message, one thread hop and one claim for the group instead of one of each per object. Each
request waits for its send and gets its error if it failed (docs/adr/0025).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class GroupDispatch:
    def __init__(self, dispatch: Callable[..., None]) -> None:
        self._dispatch = dispatch  # dispatch(*object_ids), a blocking send
        self._pending: list[tuple[str, asyncio.Future[None]]] = []
        self._sender: asyncio.Task[None] | None = None  # a strong reference: the loop keeps only weak ones
        self.sends = 0  # sends made, and the activations they carried: a test's window on the grouping
        self.sent = 0

    async def dispatch(self, object_id: str) -> None:
        """Ask for the object's activation; returns once it was sent (raises what the send raised)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((object_id, future))
        if self._sender is None:
            self._sender = asyncio.ensure_future(self._send_while_asked())  # its first step runs when this turn ends
        await future

    async def _send_while_asked(self) -> None:
        try:
            while self._pending:
                pending, self._pending = self._pending, []
                await self._send(pending)
        finally:
            self._sender = None

    async def _send(self, pending: list[tuple[str, asyncio.Future[None]]]) -> None:
        object_ids = list(dict.fromkeys(object_id for object_id, _ in pending))
        self.sends += 1
        self.sent += len(object_ids)
        try:
            await asyncio.to_thread(self._dispatch, *object_ids)
        except Exception as exc:
            for _, future in pending:
                if not future.done():  # its request may have been cancelled meanwhile
                    future.set_exception(exc)
            return
        for _, future in pending:
            if not future.done():
                future.set_result(None)
