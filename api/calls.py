"""Submitting calls: validate, enqueue into the mailbox, wake or activate, await the outcome."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from starlette.requests import HTTPConnection

from solo.api.auth import acting_tenant
from solo.api.errors import InvalidIdempotencyKey
from solo.api.group_dispatch import GroupDispatch
from solo.api.group_enqueue import GroupEnqueue
from solo.api.replies import ReplyListener
from solo.objects.calls import Call, Outcome
from solo.objects.errors import CallTimeout, MailboxFull
from solo.objects.metrics import ApiMetrics
from solo.objects.naming import (
    Address,
    check_class_name,
    check_object_name,
    idempotent_call_id,
    new_call_id,
    object_id,
)
from solo.objects.registry import ClassRegistry
from solo.objects.tracing import OFF, Tracing

MAX_IDEMPOTENCY_KEY_CHARS = 255


class CallService:
    def __init__(
        self,
        *,
        namespace: str,
        registry: ClassRegistry,
        enqueues: GroupEnqueue,
        replies: ReplyListener,
        dispatch: Callable[..., None],
        secret: Callable[[], bytes],
        metrics: ApiMetrics | None = None,
        tracing: Tracing = OFF,
    ) -> None:
        self.namespace = namespace
        self._read_secret = secret
        self._secret: bytes | None = None
        self.registry = registry
        self.enqueues = enqueues
        self.replies = replies
        self.dispatches = GroupDispatch(dispatch)  # dispatch(*object_ids): activations, sent together
        self.metrics = metrics or ApiMetrics()
        self.tracing = tracing

    def address(self, tenant: str, class_name: str, name: str, *, served: bool = True) -> Address:
        """The object's address; with `served` (the default) its class must be one this API loads."""
        check_class_name(class_name)
        check_object_name(name)
        if served:
            self.registry.get(class_name)
        return Address(class_name, name, object_id(self.namespace, class_name, name, tenant), tenant)

    def addressed(self, request: HTTPConnection, *, served: bool = True) -> Address:
        """The object a request's path names, in the tenant the request acts in.

        `served=False` for what an operator does to the state of an object whose class is no
        longer served (info, delete): its address needs only the names."""
        p = request.path_params
        return self.address(acting_tenant(request), p["class_name"], p["name"], served=served)

    async def secret(self) -> bytes:
        """The deployment's secret (read from the shared database once per process)."""
        if self._secret is None:
            self._secret = await asyncio.to_thread(self._read_secret)
        return self._secret

    async def prepare(
        self, address: Address, method: str, arguments: Any, *, idempotency_key: str | None, wait: bool
    ) -> Call:
        """Check everything about a call before anything is written."""
        spec = self.registry.method(address.class_name, method)
        kwargs = spec.bind(arguments)
        if idempotency_key is not None:
            if not 0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY_CHARS or not idempotency_key.isprintable():
                raise InvalidIdempotencyKey(
                    f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} printable characters"
                )
            call_id = idempotent_call_id(await self.secret(), address.object_id, idempotency_key)
        else:
            call_id = new_call_id()
        return Call(
            call_id=call_id,
            object_id=address.object_id,
            class_name=address.class_name,
            object_name=address.name,
            method=method,
            args=kwargs,
            reply_to=self.replies.key if wait else None,
            enqueued_ms=time.time_ns() // 1_000_000,
            tenant=address.tenant,
            trace=self.tracing.current(),  # the request's span (api/app.py): the call's spans join its trace
        )

    async def submit(self, call: Call) -> Outcome | None:
        """Enqueue; returns the outcome if it was already recorded (idempotent retry), else None."""
        try:
            enqueued = await self.enqueues.enqueue(call)
        except MailboxFull:
            self.metrics.refused("mailbox_full", call.tenant)
            raise
        if enqueued.decision == "dispatch":
            await self.dispatches.dispatch(call.object_id)
        return enqueued.outcome

    async def call(self, call: Call, timeout_s: float) -> Outcome:
        future = self.replies.expect(call.call_id)
        try:
            recorded = await self.submit(call)
            if recorded is not None:
                return recorded
            # A timer that fails the reply's future, where asyncio.wait_for would add a waiter future
            # and two callbacks around it (3.11): the same answer, CallTimeout once `timeout_s` has passed.
            timer = asyncio.get_running_loop().call_later(timeout_s, _time_out, future)
            try:
                return await future
            finally:
                timer.cancel()
        except TimeoutError:
            raise CallTimeout(
                f"no result within {timeout_s:g} s; the call still completes: GET /v1/calls/{call.call_id}",
                call.call_id,
            ) from None
        finally:
            self.replies.forget(call.call_id, future)


def _time_out(future: asyncio.Future[Outcome]) -> None:
    if not future.done():
        future.set_exception(TimeoutError())
