"""solo's own rows in a database file that came from outside, parsed into solo's types.

An imported file (or a state that got into the shared database some other
way) holds rows of ``_solo_meta``, ``_solo_calls``, ``_solo_kv``,
``_solo_outbox`` and ``_solo_alarms`` that solo will act on: it sends the
outbox, replays recorded outcomes, fires alarms. Each row is read here as
plain values and either becomes a `Call`, `Outcome` or `AlarmRow` that solo
itself could have written for this object, or is refused with `InvalidRow`
naming the table and the problem. Nothing in a row is used as a path, a Redis
key or a method name before it passed here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from croniter import croniter

from solo.objects.alarms import (
    ALARM,
    MAX_GRACE_S,
    MAX_RETRIES,
    MISSED_POLICIES,
    AlarmRow,
    check_alarm_handler,
    check_schedule_method,
    check_schedule_name,
)
from solo.objects.calls import Call, Outcome
from solo.objects.errors import InvalidName, InvalidRow, InvalidSchedule, SoloError
from solo.objects.naming import (
    DEFAULT_TENANT,
    check_class_name,
    check_object_name,
    is_call_id,
    is_object_id,
    object_id,
)
from solo.objects.recurrence import Recurrence
from solo.objects.registry import ClassRegistry
from solo.objects.tracing import is_traceparent

META, CALLS, KV, OUTBOX, ALARMS = "_solo_meta", "_solo_calls", "_solo_kv", "_solo_outbox", "_solo_alarms"
META_KEYS = ("epoch", "schema_version")
_CALL_REQUIRED = {"call_id", "object_id", "class_name", "object_name", "method", "args"}
_CALL_FIELDS = _CALL_REQUIRED | {"reply_to", "enqueued_ms", "chain", "tenant", "trace"}
_ERROR_FIELDS = {"code", "message", "status", "type", "details"}


@dataclass(frozen=True)
class Rules:
    """What the rows must fit: the class the file becomes an object of, in this deployment."""

    cls: type
    namespace: str
    registry: ClassRegistry
    tenant: str = DEFAULT_TENANT

    @property
    def known_migrations(self) -> int:
        return len(getattr(self.cls, "migrations", ()))


# -- plain values ----------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return type(value) is int


def _json(table: str, what: str, raw: object) -> Any:
    if not isinstance(raw, str):
        raise InvalidRow(table, f"{what} must be JSON text, not {type(raw).__name__}")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deeply
        raise InvalidRow(table, f"{what} is not JSON: {type(exc).__name__}: {exc}"[:300]) from None


def _time_ms(table: str, what: str, value: object, *, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if not _is_int(value) or value < 0:  # type: ignore[operator]
        raise InvalidRow(table, f"{what} must be a non-negative integer (epoch ms), not {value!r}")
    return value  # type: ignore[return-value]


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# -- _solo_meta ------------------------------------------------------------------------


def parse_meta(rows: list[tuple[object, object]], known_migrations: int) -> int:
    """The file's schema version: an integer from 0 to the class's number of migrations."""
    version = 0
    for key, value in rows:
        if key not in META_KEYS:
            raise InvalidRow(META, f"unknown key {_short(key)}: solo keeps only {' and '.join(META_KEYS)} there")
        if key == "schema_version":
            if not _is_int(value) or value < 0:  # type: ignore[operator]
                raise InvalidRow(
                    META,
                    f"schema_version must be an integer from 0 to {known_migrations} (the class's migrations),"
                    f" not {_short(value)}",
                )
            version = value  # type: ignore[assignment]
    if version > known_migrations:
        raise InvalidRow(
            META,
            f"schema_version: the file has schema version {version}; this code knows {known_migrations} migrations",
        )
    return version


# -- _solo_calls -----------------------------------------------------------------------


def parse_call_record(call_id: object, payload: object, finished_ms: object) -> Outcome:
    """A recorded outcome (exactly-once replays answer callers with it)."""
    if not is_call_id(call_id):
        raise InvalidRow(CALLS, f"call_id {_short(call_id)} is not a call id solo makes")
    _time_ms(CALLS, "finished_ms", finished_ms)
    data = _json(CALLS, f"the payload of {call_id}", payload)
    if not isinstance(data, dict) or set(data) != {"call_id", "ok", "result", "error"}:
        raise InvalidRow(CALLS, f"the payload of {call_id} is not a recorded outcome (call_id, ok, result, error)")
    if data["call_id"] != call_id:
        raise InvalidRow(CALLS, f"the payload of {call_id} is the outcome of {_short(data['call_id'])}")
    ok, error = data["ok"], data["error"]
    if not isinstance(ok, bool):
        raise InvalidRow(CALLS, f"the payload of {call_id}: ok must be true or false")
    if ok and error is not None:
        raise InvalidRow(CALLS, f"the payload of {call_id}: a success carries no error")
    if not ok:
        _check_error(call_id, error)
    return Outcome(call_id=call_id, ok=ok, result=data["result"], error=error)  # type: ignore[arg-type]


def _check_error(call_id: object, error: object) -> None:
    if (
        not isinstance(error, dict)
        or not set(error) <= _ERROR_FIELDS
        or not isinstance(error.get("code"), str)
        or not isinstance(error.get("message"), str)
        or not isinstance(error.get("type", ""), str)
        or not isinstance(error.get("details", {}), dict)
    ):
        raise InvalidRow(CALLS, f"the payload of {call_id}: a failure's error has a code and a message (text)")
    status = error.get("status")
    if status is not None and not (_is_int(status) and 400 <= status <= 599):
        raise InvalidRow(CALLS, f"the payload of {call_id}: an error's status is 400 to 599, not {_short(status)}")


# -- _solo_kv --------------------------------------------------------------------------


def parse_kv(key: object, value: object) -> tuple[str, Any]:
    """One entry of self.storage: a text key and a JSON value."""
    if not isinstance(key, str):
        raise InvalidRow(KV, f"key {_short(key)} is not text")
    return key, _json(KV, f"the value of {key!r}", value)


# -- _solo_outbox ----------------------------------------------------------------------


def parse_sent_call(
    raw: object, namespace: str, registry: ClassRegistry | None = None, *, tenant: str = DEFAULT_TENANT
) -> Call:
    """A call sent with ``.send()`` and not yet enqueued, as solo wrote it for this deployment.

    Its ids are solo's own (the target's is recomputed from its namespace, the sender's
    `tenant`, class and name, so it can never name a path, another key or another tenant's
    object), it waits for no reply, and, with a `registry`, its class and @rpc method exist.
    """
    data = _json(OUTBOX, "call", raw)
    if not isinstance(data, dict):
        raise InvalidRow(OUTBOX, "call must be a JSON object")
    missing = _CALL_REQUIRED - set(data)
    unknown = set(data) - _CALL_FIELDS
    if missing or unknown:
        raise InvalidRow(OUTBOX, f"call is not a Call (missing {sorted(missing)}, unknown {sorted(unknown)})")
    call_id = data["call_id"]
    if not (is_call_id(call_id) and call_id.startswith("o")):
        raise InvalidRow(OUTBOX, f"call_id {_short(call_id)} is not the id of a sent call (o + 31 hex digits)")
    class_name, name = data["class_name"], data["object_name"]
    try:
        check_class_name(class_name)
        check_object_name(name)
    except InvalidName as exc:
        raise InvalidRow(OUTBOX, f"call {call_id}: {exc.message}") from None
    if data.get("tenant", DEFAULT_TENANT) != tenant:
        raise InvalidRow(OUTBOX, f"call {call_id}: a call may be sent only within its sender's tenant")
    target = data["object_id"]
    if not is_object_id(target) or target != object_id(namespace, class_name, name, tenant):
        raise InvalidRow(
            OUTBOX,
            f"call {call_id}: object_id {_short(target)} is not the id of {class_name}/{name} in this deployment",
        )
    method = data["method"]
    if not isinstance(method, str):
        raise InvalidRow(OUTBOX, f"call {call_id}: method must be text")
    if registry is not None:
        try:
            registry.method(class_name, method)
        except SoloError as exc:
            raise InvalidRow(OUTBOX, f"call {call_id}: {exc.message}") from None
    if data.get("reply_to") not in (None, ""):
        raise InvalidRow(OUTBOX, f"call {call_id}: reply_to must be empty: nobody waits for a sent call")
    if not isinstance(data["args"], dict):
        raise InvalidRow(OUTBOX, f"call {call_id}: args must be a JSON object")
    chain = data.get("chain", [])
    if not isinstance(chain, list) or not all(isinstance(c, str) for c in chain):
        raise InvalidRow(OUTBOX, f"call {call_id}: chain must be a list of strings")
    enqueued_ms = _time_ms(OUTBOX, f"call {call_id}: enqueued_ms", data.get("enqueued_ms", 0))
    trace = data.get("trace", "")
    if trace != "" and not is_traceparent(trace):
        raise InvalidRow(OUTBOX, f"call {call_id}: trace must be a W3C traceparent")
    return Call(
        call_id,
        target,
        class_name,
        name,
        method,
        data["args"],
        None,
        enqueued_ms or 0,
        list(chain),
        tenant,
        trace=trace,
    )


def parse_outbox_row(call_id: object, raw: object, created_ms: object, rules: Rules) -> Call:
    call = parse_sent_call(raw, rules.namespace, rules.registry, tenant=rules.tenant)
    if call_id != call.call_id:
        raise InvalidRow(OUTBOX, f"the row's call_id {_short(call_id)} is not its call's ({call.call_id})")
    _time_ms(OUTBOX, f"call {call.call_id}: created_ms", created_ms)
    return call


# -- _solo_alarms ----------------------------------------------------------------------

ALARM_COLUMNS = (
    "name, method, kwargs, start_ms, every_ms, cron, missed, grace_ms, scheduled_ms, next_ms,"
    " retry_count, failures, last_error, last_error_ms, last_fired_ms, created_ms"
)


def parse_alarm(values: tuple[Any, ...], cls: type) -> AlarmRow:
    """The alarm or a schedule, as objects/alarms.py would have written it for `cls` (ALARM_COLUMNS)."""
    name, method, raw_kwargs, start_ms, every_ms, cron, missed, grace_ms, scheduled_ms, next_ms, *rest = values
    retry_count, failures, last_error, last_error_ms, last_fired_ms, created_ms = rest
    what = f"alarm {_short(name)}"
    kwargs = _json(ALARMS, f"{what}: kwargs", raw_kwargs)
    if not isinstance(kwargs, dict):
        raise InvalidRow(ALARMS, f"{what}: kwargs must be a JSON object")
    try:
        if name == ALARM:
            if method != "alarm" or kwargs:
                raise InvalidRow(ALARMS, f"the alarm calls alarm() with no kwargs, not {_short(method)}")
            check_alarm_handler(cls)
        else:
            check_schedule_name(name)
            check_schedule_method(cls, method, kwargs)
    except InvalidSchedule as exc:
        raise InvalidRow(ALARMS, f"{what}: {exc.message}") from None
    _time_ms(ALARMS, f"{what}: start_ms", start_ms)
    if every_ms is not None and not (_is_int(every_ms) and every_ms >= 1):
        raise InvalidRow(ALARMS, f"{what}: every_ms must be a positive integer, not {_short(every_ms)}")
    if cron is not None and not (isinstance(cron, str) and croniter.is_valid(cron)):
        raise InvalidRow(ALARMS, f"{what}: not a valid cron expression: {_short(cron)}")
    if every_ms is not None and cron is not None:
        raise InvalidRow(ALARMS, f"{what}: every_ms or cron, not both")
    if name == ALARM and (every_ms is not None or cron is not None):
        raise InvalidRow(ALARMS, "the alarm fires once: no every_ms or cron")
    if missed not in MISSED_POLICIES:
        raise InvalidRow(ALARMS, f"{what}: missed must be one of {', '.join(MISSED_POLICIES)}, not {_short(missed)}")
    if not (_is_int(grace_ms) and 0 <= grace_ms <= MAX_GRACE_S * 1000):
        raise InvalidRow(ALARMS, f"{what}: grace_ms must be an integer from 0 to {MAX_GRACE_S * 1000}")
    for column, value in (("scheduled_ms", scheduled_ms), ("next_ms", next_ms)):
        _time_ms(ALARMS, f"{what}: {column}", value, optional=True)
    if not (_is_int(retry_count) and 0 <= retry_count <= MAX_RETRIES):
        raise InvalidRow(ALARMS, f"{what}: retry_count must be an integer from 0 to {MAX_RETRIES}")
    if not (_is_int(failures) and failures >= 0):
        raise InvalidRow(ALARMS, f"{what}: failures must be a non-negative integer")
    if last_error is not None and not isinstance(last_error, str):
        raise InvalidRow(ALARMS, f"{what}: last_error must be text")
    for column, value in (("last_error_ms", last_error_ms), ("last_fired_ms", last_fired_ms)):
        _time_ms(ALARMS, f"{what}: {column}", value, optional=True)
    _time_ms(ALARMS, f"{what}: created_ms", created_ms)
    return AlarmRow(
        name,
        method,
        kwargs,
        Recurrence(start_ms, every_ms, cron),
        missed,
        grace_ms,
        scheduled_ms,
        next_ms,
        retry_count,
        failures,
        last_error,
        last_error_ms,
        last_fired_ms,
    )
