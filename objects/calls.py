"""Records that travel through the mailbox and back: a Call and its Outcome; what a batch returns."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from solo.objects.naming import DEFAULT_TENANT
from solo.objects.sql import VALUE_LENGTH_LIMIT

# A call's result, as the caller gets it (compact UTF-8 JSON), is at most SOLO_MAX_RESULT_BYTES:
# this by default, and never more than its record holds. The record keeps it as ASCII JSON
# (non-ASCII characters escaped, up to three times longer) in one value of the object's
# _solo_calls, which no value may pass the connection's length limit in.
DEFAULT_MAX_RESULT_BYTES = 16 * 1024 * 1024
MAX_RECORDED_RESULT_BYTES = VALUE_LENGTH_LIMIT - 64 * 1024


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


@dataclass(frozen=True)
class Call:
    """One invocation of an @rpc method, as it sits in the object's mailbox."""

    call_id: str
    object_id: str
    class_name: str
    object_name: str
    method: str
    args: dict[str, Any]
    reply_to: str | None = None  # the waiting process's reply list, if any
    enqueued_ms: int = 0
    # Objects waiting on this call ("Class/name", outermost first): a call from another
    # object's call carries its caller's chain plus the caller. Empty for calls from outside.
    chain: list[str] = field(default_factory=list)
    # The target's tenant (part of its identity, hence of object_id): recorded with the call
    # so that its status is shown to that tenant only, and kept by calls the target makes.
    tenant: str = DEFAULT_TENANT
    # How often a worker died or hung while it had this call claimed (set at claim, from its
    # record; not part of the mailbox entry). Past SOLO_POISON_AFTER the call is not run again.
    crashes: int = field(default=0, compare=False)
    # The W3C traceparent of the span that made the call ("": untraced), from objects/tracing.py.
    # Left out of the entry when empty, so an untraced call's entry is as it was before traces.
    trace: str = ""

    def fingerprint(self) -> str:
        """What the call asks for: its target, method and arguments (an Idempotency-Key may not change it)."""
        asked = json.dumps([self.object_id, self.method, self.args], sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(asked.encode()).hexdigest()[:32]

    def to_json(self) -> str:
        # The fields in their order, but for `crashes`; by hand, as asdict()'s deep copy of the
        # arguments cost about five times as much, on every enqueue and every send.
        data = {
            "call_id": self.call_id,
            "object_id": self.object_id,
            "class_name": self.class_name,
            "object_name": self.object_name,
            "method": self.method,
            "args": self.args,
            "reply_to": self.reply_to,
            "enqueued_ms": self.enqueued_ms,
            "chain": self.chain,
            "tenant": self.tenant,
        }
        if self.trace:
            data["trace"] = self.trace
        return dumps(data)

    @classmethod
    def from_json(cls, raw: str | bytes, *, crashes: int = 0) -> Call:
        """`crashes`: the count its record holds, when claimed (not part of the entry)."""
        data = json.loads(raw)
        if crashes:
            data["crashes"] = crashes
        return cls(**data)


_PAYLOAD = "_payload"  # an Outcome's payload(), once made: not a field (equality and repr ignore it)


@dataclass(frozen=True)
class Outcome:
    """What a call produced: a JSON result, or an error with a code and a message."""

    call_id: str
    ok: bool
    result: Any = None
    error: dict[str, Any] | None = None

    @classmethod
    def success(cls, call_id: str, result: Any, *, result_json: str | None = None) -> Outcome:
        """`result_json`: the result as ASCII JSON (`dumps`), when the caller encoded it already."""
        outcome = cls(call_id=call_id, ok=True, result=result)
        if result_json is not None:  # the payload as payload() would make it, without encoding the result again
            payload = f'{{"call_id":{dumps(call_id)},"ok":true,"result":{result_json},"error":null}}'
            object.__setattr__(outcome, _PAYLOAD, payload)
        return outcome

    @classmethod
    def failure(
        cls,
        call_id: str,
        code: str,
        message: str,
        *,
        status: int | None = None,
        type_: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> Outcome:
        error: dict[str, Any] = {"code": code, "message": message}
        if status is not None:  # only UserError picks its own status
            error["status"] = status
        if type_:
            error["type"] = type_
        if details is not None:  # a UserError's own, JSON-able (objects/errors.py)
            error["details"] = details
        return cls(call_id=call_id, ok=False, error=error)

    def payload(self) -> str:
        """The JSON stored for exactly-once replays and sent to waiting callers.

        Made once (the call's record and its publication both need it), kept beside the fields."""
        payload: str | None = self.__dict__.get(_PAYLOAD)
        if payload is None:
            payload = dumps({"call_id": self.call_id, "ok": self.ok, "result": self.result, "error": self.error})
            object.__setattr__(self, _PAYLOAD, payload)
        return payload

    @classmethod
    def from_payload(cls, raw: str | bytes) -> Outcome:
        data = json.loads(raw)
        return cls(call_id=data["call_id"], ok=data["ok"], result=data.get("result"), error=data.get("error"))


@dataclass(frozen=True)
class BatchResult:
    """What one committed and shipped batch of an object (or its hydrate) must release, in order.

    The activation sends `sends` (calls the batch sent with ``.send``), announces `alarms`
    ((name, next due ms or None) of alarms it changed) to the scheduler, routes
    `socket_messages` to the gateways, and only then publishes `outcomes`: a caller who got a
    reply finds what the call sent already queued.
    """

    outcomes: list[Outcome] = field(default_factory=list)
    sends: list[Call] = field(default_factory=list)
    alarms: list[tuple[str, int | None]] = field(default_factory=list)
    # Messages for WebSocket gateways (objects/websockets.py), in order, and the outbox seq of the last.
    socket_messages: list[str] = field(default_factory=list)
    socket_seq: int = 0
