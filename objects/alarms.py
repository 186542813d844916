"""Alarms and schedules inside one object: stored in its own database, fired through its mailbox.

Every object has at most one Cloudflare-style alarm (``self.storage.set_alarm``,
handler ``alarm(info)``) and any number of named schedules (``self.schedule``).
Both are rows of ``_solo_alarms``, written in the calling transaction, so an
alarm set by a call that fails is never set, and one set by a call that
succeeds becomes durable (and visible to the scheduler) with that call's
shipment: the rows of changed alarms travel to the shared ``alarms`` index in
the same shared-database transaction as the commit's log record.

A fire arrives as a call (``FIRE_METHOD``) naming the alarm and the due time the
scheduler saw. It runs only if the alarm is still due by then (a replaced or
deleted alarm makes an old fire a no-op), in a savepoint like any call:
- success: a one-shot alarm is deleted, a recurring one moves to its next occurrence
  (unless the handler itself replaced or deleted it);
- failure: the handler's writes are rolled back and the same occurrence is
  retried after 2 s, 4 s, ... 64 s; after ``MAX_RETRIES`` retries it is dropped,
  with the error kept on the row for operators.

An operator's action on one alarm (cancel, fire now) arrives as a call too
(``ACTION_METHOD``), queued in the object's mailbox like any call and recorded like
one, so the object's own table stays the truth and the change reaches the shared
index and the scheduler the way every change does: with its shipment.

Missed-fire policies decide what a recurring schedule does when it fires late,
e.g. after downtime. An occurrence is *missed* when it fires more than
``grace_s`` after its time. ``fire_once`` (default) runs once for every
occurrence due by now; ``catch_up`` runs each due occurrence in turn; ``skip``
runs the latest due occurrence only if it is not missed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import inspect
import json
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from solo.objects.errors import InvalidSchedule
from solo.objects.recurrence import Recurrence, to_epoch_ms
from solo.objects.tracing import is_traceparent

FIRE_METHOD = "_solo_fire"  # never an @rpc name: those may not start with "_"
ACTION_METHOD = "_solo_alarm_action"  # an operator's cancel or fire-now, args {"action", "name"}
ACTIONS = ("cancel", "fire_now")
ALARM = "_alarm"  # the row of the object's single alarm; schedule names may not start with "_"
MAX_RETRIES = 6
FIRST_BACKOFF_MS = 2000
MAX_ERROR_CHARS = 2000
MAX_GRACE_S = 10 * 365 * 24 * 3600

Missed = Literal["skip", "fire_once", "catch_up"]
MISSED_POLICIES = ("skip", "fire_once", "catch_up")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,199}$")

ALARMS_DDL = (
    "CREATE TABLE IF NOT EXISTS _solo_alarms ("
    " name TEXT PRIMARY KEY,"
    " method TEXT NOT NULL,"  # 'alarm' for the single alarm
    " kwargs TEXT NOT NULL,"  # JSON object
    " start_ms INTEGER NOT NULL, every_ms INTEGER, cron TEXT,"  # objects.recurrence.Recurrence
    " missed TEXT NOT NULL, grace_ms INTEGER NOT NULL,"
    " scheduled_ms INTEGER,"  # the occurrence the next fire is for; NULL once dropped
    " next_ms INTEGER,"  # when the next fire is due: scheduled_ms, or later while retrying
    " retry_count INTEGER NOT NULL DEFAULT 0,"
    " failures INTEGER NOT NULL DEFAULT 0,"  # occurrences dropped after every retry failed
    " last_error TEXT, last_error_ms INTEGER, last_fired_ms INTEGER,"
    " created_ms INTEGER NOT NULL"
    ") WITHOUT ROWID"
)

# The trace context of the call that set each alarm (objects/tracing.py): its fires link to it.
# Made only by a process that traces, the first time it sets an alarm; imports may carry it.
ALARM_TRACES_DDL = (
    "CREATE TABLE IF NOT EXISTS _solo_alarm_traces (name TEXT PRIMARY KEY, trace TEXT NOT NULL) WITHOUT ROWID"
)


@dataclass(frozen=True)
class AlarmInfo:
    """What a handler learns about the fire it runs in (Cloudflare's alarm info, plus more)."""

    retry_count: int
    is_retry: bool
    scheduled_ms: int  # the occurrence this fire is for
    name: str  # "_alarm" for the single alarm, else the schedule's name
    token: str  # the fire's idempotency token: the same for every retry of one occurrence


def kind_of(name: str) -> str:
    return "alarm" if name == ALARM else "schedule"


def state_of(next_ms: int | None, retry_count: int) -> str:
    """pending, retrying, or failed (dropped after its retries: nothing left to fire)."""
    if next_ms is None:
        return "failed"
    return "retrying" if retry_count else "pending"


@dataclass(frozen=True)
class AlarmRow:
    """One row of ``_solo_alarms``, as the shared index and the listings see it."""

    name: str
    method: str
    kwargs: dict[str, Any]
    recurrence: Recurrence
    missed: str
    grace_ms: int
    scheduled_ms: int | None
    next_ms: int | None
    retry_count: int
    failures: int
    last_error: str | None
    last_error_ms: int | None
    last_fired_ms: int | None

    @property
    def kind(self) -> str:
        return kind_of(self.name)

    @property
    def state(self) -> str:
        return state_of(self.next_ms, self.retry_count)

    def describe(self) -> dict[str, Any]:
        """The JSON shape of ``self.schedules()``, the API and the CLI."""
        return {
            "name": self.name,
            "kind": self.kind,
            "method": self.method,
            "kwargs": self.kwargs,
            "spec": self.recurrence.describe(),
            "missed": self.missed,
            "state": self.state,
            "scheduled_ms": self.scheduled_ms,
            "next_ms": self.next_ms,
            "retry_count": self.retry_count,
            "failures": self.failures,
            "last_error": self.last_error,
            "last_error_ms": self.last_error_ms,
            "last_fired_ms": self.last_fired_ms,
        }


_COLUMNS = (
    "name, method, kwargs, start_ms, every_ms, cron, missed, grace_ms, scheduled_ms, next_ms,"
    " retry_count, failures, last_error, last_error_ms, last_fired_ms"
)


def _row(values: sqlite3.Row | tuple[Any, ...]) -> AlarmRow:
    name, method, kwargs, start_ms, every_ms, cron, missed, grace_ms, *rest = values
    return AlarmRow(name, method, json.loads(kwargs), Recurrence(start_ms, every_ms, cron), missed, grace_ms, *rest)


def read_rows(conn: sqlite3.Connection, names: list[str] | None = None) -> list[AlarmRow]:
    """Rows of `names` (all when None); a database without the table has none."""
    try:
        if names is None:
            return [_row(r) for r in conn.execute(f"SELECT {_COLUMNS} FROM _solo_alarms ORDER BY name")]
        found = []
        for name in names:
            r = conn.execute(f"SELECT {_COLUMNS} FROM _solo_alarms WHERE name = ?", (name,)).fetchone()
            if r is not None:
                found.append(_row(r))
        return found
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise


def fire_token(object_id: str, name: str, scheduled_ms: int) -> str:
    return f"{object_id}:{name}:{scheduled_ms}"


@dataclass
class Fire:
    """A fire in progress: what to run, and what the row looked like before."""

    row: AlarmRow
    info: AlarmInfo
    advance_from_ms: int  # on success a recurring schedule continues after this occurrence


def _same_schedule(
    row: AlarmRow,
    method: str,
    kwargs: dict[str, Any],
    recurrence: Recurrence,
    missed: str,
    grace_ms: int,
    start_given: bool,
) -> bool:
    """A pending schedule with this very definition (an interval's start counts only if it was given)."""
    old = row.recurrence
    return (
        row.next_ms is not None
        and (row.method, row.kwargs, row.missed, row.grace_ms) == (method, kwargs, missed, grace_ms)
        and (old.every_ms, old.cron) == (recurrence.every_ms, recurrence.cron)
        and (old.start_ms == recurrence.start_ms or recurrence.cron is not None or not start_given)
    )


def check_alarm_handler(cls: type) -> None:
    """The single alarm calls ``alarm(info)``: the class must have one."""
    if not callable(getattr(cls, "alarm", None)):
        raise InvalidSchedule(f"{cls.__name__} has no alarm(self, info) handler to call")


def check_schedule_name(name: object) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidSchedule(
            f"schedule name {name!r}: 1-200 characters of letters, digits and _.:-, not starting with _ . : -"
        )


def check_schedule_method(cls: type, method: object, kwargs: dict[str, Any]) -> None:
    """What a schedule may call: a public method of the class (not alarm or on_start) that takes `kwargs`."""
    if not isinstance(method, str) or method.startswith("_") or method in ("alarm", "on_start"):
        raise InvalidSchedule(f"a schedule calls a public method of the object, not {method!r}")
    function = getattr(cls, method, None)
    if not callable(function):
        raise InvalidSchedule(f"{cls.__name__} has no method {method!r}")
    spec = getattr(cls, "__solo_methods__", {}).get(method)
    try:
        if spec is not None:
            spec.bind(kwargs)
        else:
            inspect.signature(function).bind(None, **kwargs)
    except Exception as exc:
        raise InvalidSchedule(f"kwargs do not fit {method}: {exc}") from None


class Alarms:
    """The alarm and schedule API of one object, on its connection and inside its transactions.

    ``dirty`` collects the names changed since the last shipment; the instance
    sends their rows to the shared index with the next log record.
    """

    def __init__(
        self, cls: type, object_id: str, clock_ms: Callable[[], int], trace: Callable[[], str] | None = None
    ) -> None:
        self._cls = cls
        self._object_id = object_id
        self._clock_ms = clock_ms
        self._trace = trace  # the running span's traceparent, when this process traces
        self.conn: sqlite3.Connection | None = None
        self.dirty: set[str] = set()
        self._firing: str | None = None  # the alarm whose handler is running
        self._touched: set[str] = set()  # names set or deleted by the running handler

    # -- the single alarm (self.storage.set_alarm / get_alarm / delete_alarm) ---

    def set_alarm(self, when: dt.datetime | int | float) -> None:
        check_alarm_handler(self._cls)
        due = to_epoch_ms(when, "the alarm time")
        self._put(ALARM, "alarm", {}, Recurrence(due), "fire_once", 0)

    def get_alarm(self) -> int | None:
        if self._firing == ALARM and ALARM not in self._touched:
            return None  # like Cloudflare: inside alarm(), the alarm being run is no longer set
        rows = read_rows(self._db, [ALARM])
        return rows[0].scheduled_ms if rows and rows[0].next_ms is not None else None

    def delete_alarm(self) -> None:
        self._delete(ALARM)

    # -- named schedules (self.schedule / cancel_schedule / schedules) --------

    def schedule(
        self,
        name: str,
        method: str,
        *,
        at: dt.datetime | int | float | None = None,
        every_s: float | None = None,
        cron: str | None = None,
        kwargs: dict[str, Any] | None = None,
        missed: Missed = "fire_once",
        grace_s: float = 60.0,
    ) -> dict[str, Any]:
        check_schedule_name(name)
        if missed not in MISSED_POLICIES:
            raise InvalidSchedule(f"missed must be one of {', '.join(MISSED_POLICIES)}, not {missed!r}")
        if isinstance(grace_s, bool) or not isinstance(grace_s, (int, float)) or not 0 <= grace_s <= MAX_GRACE_S:
            raise InvalidSchedule(f"grace_s must be a number of seconds from 0 to {MAX_GRACE_S}, not {grace_s!r}")
        kwargs = dict(kwargs or {})
        check_schedule_method(self._cls, method, kwargs)
        at_ms = None if at is None else to_epoch_ms(at, "at")
        recurrence = Recurrence.build(self._clock_ms(), at_ms, every_s, cron)
        grace_ms = int(grace_s * 1000)
        existing = read_rows(self._db, [name])
        if existing and _same_schedule(existing[0], method, kwargs, recurrence, missed, grace_ms, at_ms is not None):
            return existing[0].describe()  # unchanged: keep its timing (on_start may say it on every activation)
        return self._put(name, method, kwargs, recurrence, missed, grace_ms).describe()

    def cancel_schedule(self, name: str) -> bool:
        if not isinstance(name, str) or name.startswith("_"):
            return False
        return self._delete(name)

    def schedules(self) -> list[dict[str, Any]]:
        return [row.describe() for row in read_rows(self._db) if row.name != ALARM]

    # -- an operator's actions (ACTION_METHOD calls) -----------------------------

    def cancel(self, name: str) -> bool:
        """Remove the alarm or schedule `name` (the single alarm is ALARM); False if there was none."""
        return self._delete(name)

    def fire_now(self, name: str) -> int | None:
        """Make `name` due now; returns that time, or None if the object has no such alarm.

        A retrying occurrence is retried now; otherwise the fire counts as an occurrence at now
        (a failed one-shot alarm runs again), and a recurring schedule goes on after it as before.
        """
        if not read_rows(self._db, [name]):
            return None
        now = self._clock_ms()
        self._db.execute(
            "UPDATE _solo_alarms SET next_ms = ?,"
            " scheduled_ms = CASE WHEN retry_count > 0 AND scheduled_ms IS NOT NULL THEN scheduled_ms ELSE ? END"
            " WHERE name = ?",
            (now, now, name),
        )
        self.dirty.add(name)
        return now

    # -- firing (the instance drives these inside the fire call's savepoint) ---

    def begin_fire(self, name: str, due_ms: int) -> Fire | None:
        """The fire to run now, or None (stale fire, or a missed occurrence skipped).

        Whatever happens, the alarm's row is shipped and announced again afterwards, so a
        stale entry in the scheduler's index is corrected by the fire it caused.
        """
        self.dirty.add(name)
        rows = read_rows(self._db, [name])
        now = self._clock_ms()
        if not rows or rows[0].next_ms is None or rows[0].next_ms > min(due_ms, now):
            return None  # replaced, deleted, dropped, already fired, or not yet due by our clock
        row = rows[0]
        assert row.scheduled_ms is not None
        occurrence = advance_from = row.scheduled_ms
        if row.recurrence.recurring and row.retry_count == 0 and row.missed != "catch_up":
            # Collapse every occurrence due by now into one fire (as the latest of them).
            occurrence = advance_from = row.recurrence.latest(now, occurrence)
            if row.missed == "skip" and now - occurrence > row.grace_ms:
                self._advance(row, occurrence)
                return None
        info = AlarmInfo(
            retry_count=row.retry_count,
            is_retry=row.retry_count > 0,
            scheduled_ms=occurrence,
            name=name,
            token=fire_token(self._object_id, name, occurrence),
        )
        self._firing, self._touched = name, set()
        return Fire(row, info, advance_from)

    def fire_succeeded(self, fire: Fire) -> None:
        touched = self._end_fire()
        if fire.row.name in touched:
            return  # the handler set or deleted this alarm itself: its choice stands
        now = self._clock_ms()
        self.dirty.add(fire.row.name)
        if self._advance(fire.row, fire.advance_from_ms, last_fired_ms=now):
            return
        self._db.execute("DELETE FROM _solo_alarms WHERE name = ?", (fire.row.name,))
        if self._trace is not None:
            self._keep_trace(fire.row.name, "")

    def fire_failed(self, fire: Fire, error: str) -> None:
        """After the handler's writes were rolled back: retry later, or drop this occurrence."""
        self._end_fire()
        now = self._clock_ms()
        row = fire.row
        error = error[:MAX_ERROR_CHARS]
        self.dirty.add(row.name)
        if row.retry_count < MAX_RETRIES:
            self._db.execute(
                "UPDATE _solo_alarms SET retry_count = ?, next_ms = ?, scheduled_ms = ?, last_error = ?,"
                " last_error_ms = ? WHERE name = ?",
                (
                    row.retry_count + 1,
                    now + FIRST_BACKOFF_MS * 2**row.retry_count,
                    fire.info.scheduled_ms,
                    error,
                    now,
                    row.name,
                ),
            )
            return
        self._db.execute(
            "UPDATE _solo_alarms SET failures = failures + 1, last_error = ?, last_error_ms = ?,"
            " retry_count = 0, scheduled_ms = NULL, next_ms = NULL WHERE name = ?",
            (error, now, row.name),
        )
        self._advance(row, fire.advance_from_ms)  # a recurring schedule goes on with its next occurrence

    # -- traces (objects/tracing.py) ---------------------------------------

    def trace_of(self, name: str) -> str:
        """The traceparent of the call that set the alarm `name` ("" if unknown, or not one solo writes)."""
        try:
            row = self._db.execute("SELECT trace FROM _solo_alarm_traces WHERE name = ?", (name,)).fetchone()
        except sqlite3.OperationalError:  # no such table: nothing traced set an alarm here yet
            return ""
        return row[0] if row is not None and is_traceparent(row[0]) else ""

    def _keep_trace(self, name: str, trace: str) -> None:
        """In the setting call's transaction: remember its trace (or forget the alarm's, "")."""
        if trace:
            self._db.execute(ALARM_TRACES_DDL)
            self._db.execute("INSERT OR REPLACE INTO _solo_alarm_traces (name, trace) VALUES (?, ?)", (name, trace))
            return
        with contextlib.suppress(sqlite3.OperationalError):  # no such table: nothing to forget
            self._db.execute("DELETE FROM _solo_alarm_traces WHERE name = ?", (name,))

    def _end_fire(self) -> set[str]:
        touched, self._firing, self._touched = self._touched, None, set()
        return touched

    def abandon_fire(self) -> None:
        """The fire did not finish (the batch failed): forget it; it will be delivered again."""
        self._end_fire()

    # -- internals ---------------------------------------------------------

    @property
    def _db(self) -> sqlite3.Connection:
        assert self.conn is not None, "alarms are used outside of an open object"
        return self.conn

    def _put(
        self, name: str, method: str, kwargs: dict[str, Any], recurrence: Recurrence, missed: str, grace_ms: int
    ) -> AlarmRow:
        first = recurrence.first()
        row = AlarmRow(name, method, kwargs, recurrence, missed, grace_ms, first, first, 0, 0, None, None, None)
        try:
            encoded = json.dumps(kwargs, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidSchedule(f"kwargs are not JSON-serialisable: {exc}") from None
        self._db.execute(
            "INSERT OR REPLACE INTO _solo_alarms (name, method, kwargs, start_ms, every_ms, cron, missed, grace_ms,"
            " scheduled_ms, next_ms, retry_count, failures, created_ms) VALUES (?,?,?,?,?,?,?,?,?,?,0,0,?)",
            (
                name,
                method,
                encoded,
                recurrence.start_ms,
                recurrence.every_ms,
                recurrence.cron,
                missed,
                grace_ms,
                first,
                first,
                self._clock_ms(),
            ),
        )
        if self._trace is not None:
            self._keep_trace(name, self._trace())
        self.dirty.add(name)
        self._touched.add(name)
        return row

    def _delete(self, name: str) -> bool:
        deleted = self._db.execute("DELETE FROM _solo_alarms WHERE name = ?", (name,)).rowcount > 0
        if self._trace is not None:
            self._keep_trace(name, "")
        self.dirty.add(name)
        self._touched.add(name)
        return deleted

    def _advance(self, row: AlarmRow, after_ms: int, *, last_fired_ms: int | None = None) -> bool:
        """Move a recurring schedule to its first occurrence after `after_ms`; False if it has none."""
        following = row.recurrence.after(after_ms) if row.recurrence.recurring else None
        if following is None:
            return False
        self._db.execute(
            "UPDATE _solo_alarms SET scheduled_ms = ?, next_ms = ?, retry_count = 0,"
            " last_fired_ms = COALESCE(?, last_fired_ms) WHERE name = ?",
            (following, following, last_fired_ms, row.name),
        )
        self.dirty.add(row.name)
        return True
