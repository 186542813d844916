"""Calls between objects: ``self.objects.get("Class", "name").method(**kw)`` and ``.send(...)``.

Inside a call (or ``on_start()``), an object reaches others through an
``ObjectDirectory``. Two ways to call:

- ``stub.method(**kw)`` (or ``stub.call("method", **kw)``) enqueues the call in
  the target's mailbox at once and blocks until its outcome arrives: the result
  is returned, a failure raises ``RemoteCallError``. The caller's own calls wait
  meanwhile (calls to one object are serial), so a call that would come back to
  an object already waiting in the chain (A -> B -> A, or A -> A) is refused at
  once with ``CycleError`` naming the cycle, instead of deadlocking. So is one
  that closes a cycle with other chains (A waits on B while B, serving another
  caller, calls A): the host's transport records who waits on whom
  (objects/coordination/wait_graph.py).
- ``stub.send("method", **kw)`` (or ``stub.send.method(**kw)``) is
  fire-and-forget: the call is written to the caller's outbox in the caller's
  savepoint and leaves only after the caller's batch is committed and shipped
  (the output gate). A failed call sends nothing.

Outgoing call ids are derived from the caller's call id and the position of
the outgoing call within it, so a caller that runs again after a crash makes
the same calls under the same ids, and the targets' exactly-once records
answer them instead of running them twice.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from solo.objects.calls import Call, Outcome
from solo.objects.errors import (
    CycleError,
    InvalidArguments,
    RemoteCallError,
    RemoteCallUnavailable,
    SoloError,
)
from solo.objects.naming import DEFAULT_TENANT, check_class_name, check_object_name, object_id
from solo.objects.registry import ClassRegistry
from solo.objects.tracing import OFF, Tracing


def ref(class_name: str, name: str) -> str:
    """How an object appears in call chains and cycle messages: ``Class/name``."""
    return f"{class_name}/{name}"


def cycle_of(chain: list[str], target: str) -> list[str]:
    """The part of the chain from the target's first appearance, closed by the target again."""
    return [*chain[chain.index(target) :], target]


def cycle_error(chain: list[str], target: str, method: str) -> CycleError:
    path = " -> ".join(cycle_of(chain, target))
    return CycleError(
        f"call cycle: {path} (calling {target}.{method} would wait on a call that waits for it)",
        target=target,
        method=method,
    )


def crossing_cycle_error(cycle: list[str], method: str) -> CycleError:
    """A cycle closed across chains (objects/coordination/wait_graph.py): `cycle` starts and ends with the caller."""
    target = cycle[1]
    return CycleError(
        f"call cycle: {' -> '.join(cycle)} (calling {target}.{method} would wait on a call that waits for it,"
        " made by another chain)",
        target=target,
        method=method,
    )


def derived_call_id(parent: str, index: int) -> str:
    """The id of the index-th call made by the call `parent`: the same on every re-run of it."""
    digest = hashlib.sha256(f"{parent}\x00{index}".encode()).hexdigest()
    return "o" + digest[:31]


class Transport(Protocol):
    """How a host delivers calls: enqueue into the target's mailbox, wake or activate it."""

    @property
    def reply_to(self) -> str: ...

    def call(self, call: Call, timeout_s: float) -> Outcome:
        """Enqueue and wait for the outcome; raises RemoteCallTimeout or RemoteCallError(unavailable)."""
        ...

    def send(self, call: Call) -> None:
        """Enqueue without waiting (used by the host for outbox entries)."""
        ...


@dataclass
class CallScope:
    """What one running call (or on_start) needs to call out: its id, its chain, its outbox."""

    parent_id: str
    chain: list[str]  # the callers waiting on this call, outermost first, ending with this object
    record_send: Callable[[Call], None]
    issued: int = 0
    sends: list[Call] = field(default_factory=list)
    broken: RemoteCallUnavailable | None = None  # set: the call must not be recorded (see run_batch)

    def next_call_id(self) -> str:
        call_id = derived_call_id(self.parent_id, self.issued)
        self.issued += 1
        return call_id


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class ObjectDirectory:
    """``self.objects``: stubs for other objects of this namespace and tenant."""

    def __init__(
        self,
        *,
        namespace: str,
        tenant: str = DEFAULT_TENANT,
        registry: ClassRegistry,
        scope: Callable[[], CallScope | None],
        transport: Transport | None,
        timeout_s: float,
        tracing: Tracing = OFF,
    ) -> None:
        self._namespace = namespace
        self._tenant = tenant
        self._registry = registry
        self._scope = scope
        self._transport = transport
        self._timeout_s = timeout_s
        self._tracing = tracing

    def get(self, class_name: str, name: str, *, timeout_s: float | None = None) -> ObjectStub:
        """A stub for the object `name` of class `class_name`; invalid names and unknown classes raise here."""
        check_class_name(class_name)
        check_object_name(name)
        self._registry.get(class_name)
        return ObjectStub(self, class_name, name, self._timeout_s if timeout_s is None else timeout_s)

    # -- used by stubs ------------------------------------------------------

    def _current_scope(self) -> CallScope:
        scope = self._scope()
        if scope is None:
            raise SoloError("self.objects can be used only while a call or on_start() runs")
        return scope

    def _build(self, stub: ObjectStub, method: str, kwargs: dict[str, Any], scope: CallScope, **extra: Any) -> Call:
        spec = self._registry.method(stub.class_name, method)
        args = spec.bind(kwargs)
        try:
            json.dumps(args, allow_nan=False).encode()
        except (TypeError, ValueError, RecursionError) as exc:
            raise InvalidArguments(f"{method}: arguments are not JSON-serialisable: {exc}") from None
        return Call(
            call_id=scope.next_call_id(),
            object_id=object_id(self._namespace, stub.class_name, stub.name, self._tenant),
            class_name=stub.class_name,
            object_name=stub.name,
            method=method,
            args=args,
            enqueued_ms=_now_ms(),
            tenant=self._tenant,
            trace=self._tracing.current(),  # the calling span: the target's spans join its trace
            **extra,
        )

    def _call(self, stub: ObjectStub, method: str, kwargs: dict[str, Any]) -> Any:
        scope = self._current_scope()
        target = stub.ref
        if target in scope.chain:
            raise cycle_error(scope.chain, target, method)
        transport = self._transport
        if transport is None:
            raise RemoteCallError(
                "calls between objects need a running host (this instance has no transport)", code="unavailable"
            )
        with self._tracing.calling(stub.class_name, method) as span:
            call = self._build(stub, method, kwargs, scope, reply_to=transport.reply_to, chain=list(scope.chain))
            try:
                outcome = transport.call(call, stub.timeout_s)
            except RemoteCallUnavailable as exc:
                scope.broken = exc  # even if user code catches it
                raise
            self._tracing.ended(span, outcome)
        if outcome.ok:
            return outcome.result
        raise RemoteCallError.from_outcome(target, method, outcome)

    def _send(self, stub: ObjectStub, method: str, kwargs: dict[str, Any]) -> None:
        scope = self._current_scope()
        # A sent call starts a new chain: it runs after this call has committed, and nobody waits on it.
        call = self._build(stub, method, kwargs, scope)
        scope.record_send(call)
        scope.sends.append(call)


class ObjectStub:
    """One other object. ``stub.method(**kw)`` waits for the result; ``stub.send(...)`` does not.

    ``call`` and ``send`` are the stub's own: reach target methods of those
    names with ``stub.call("call", ...)`` / ``stub.call("send", ...)``.
    """

    __slots__ = ("_directory", "class_name", "name", "timeout_s")

    def __init__(self, directory: ObjectDirectory, class_name: str, name: str, timeout_s: float) -> None:
        self._directory = directory
        self.class_name = class_name
        self.name = name
        self.timeout_s = timeout_s

    @property
    def ref(self) -> str:
        return ref(self.class_name, self.name)

    def call(self, method: str, /, **kwargs: Any) -> Any:
        """Run `method` on the target and wait for its result."""
        return self._directory._call(self, method, kwargs)

    @property
    def send(self) -> _Sender:
        """``send("method", **kw)`` or ``send.method(**kw)``: deliver after this call commits; returns None."""
        return _Sender(self)

    def __getattr__(self, method: str) -> Callable[..., Any]:
        if method.startswith("_"):
            raise AttributeError(method)

        def remote_method(**kwargs: Any) -> Any:
            return self._directory._call(self, method, kwargs)

        remote_method.__name__ = method
        return remote_method

    def __repr__(self) -> str:
        return f"<ObjectStub {self.ref}>"


class _Sender:
    __slots__ = ("_stub",)

    def __init__(self, stub: ObjectStub) -> None:
        self._stub = stub

    def __call__(self, method: str, /, **kwargs: Any) -> None:
        self._stub._directory._send(self._stub, method, kwargs)

    def __getattr__(self, method: str) -> Callable[..., None]:
        if method.startswith("_"):
            raise AttributeError(method)

        def send_method(**kwargs: Any) -> None:
            self._stub._directory._send(self._stub, method, kwargs)

        send_method.__name__ = method
        return send_method
