"""One hydrated object on one worker: its SQLite database and the user's instance.

This module knows nothing of Redis or of how calls arrive: it opens the
database, applies migrations, runs on_start(), and runs batches of calls in
one transaction with a savepoint per call. It is the unit the host drives and
the unit tests exercise directly.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import sqlite3
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection

from solo.objects.alarms import (
    ACTION_METHOD,
    ALARM,
    FIRE_METHOD,
    AlarmRow,
    Alarms,
    Fire,
    check_schedule_method,
    read_rows,
)
from solo.objects.calls import DEFAULT_MAX_RESULT_BYTES, MAX_RECORDED_RESULT_BYTES, BatchResult, Call, Outcome, dumps
from solo.objects.context import ObjectContext, wall_clock_ms
from solo.objects.definition import DurableObject
from solo.objects.errors import (
    AlarmNotFound,
    CallInterrupted,
    DiskFull,
    InvalidRow,
    OwnershipLost,
    RemoteCallError,
    ResultTooLarge,
    SchemaTooNew,
    SoloError,
    StartFailed,
    UserError,
    WebSocketsNotSupported,
)
from solo.objects.naming import DEFAULT_TENANT
from solo.objects.registry import registry
from solo.objects.remote import CallScope, ObjectDirectory, Transport, cycle_error
from solo.objects.runtime import log_fields
from solo.objects.runtime.connection import (
    SYNCHRONOUS,
    open_object_connection,
    out_of_space,
    reading_copy,
    sync_file,
)
from solo.objects.runtime.time_limit import CallTimer, Running
from solo.objects.shared import NoSharedDatabase, SharedDatabase
from solo.objects.sql import SqlHandle, UserCodeGuard, split_statements
from solo.objects.state.alarm_index import IndexUpdate
from solo.objects.state.image_rows import parse_sent_call
from solo.objects.state.local_copy import discard_local_file, prepare_local_file
from solo.objects.state.shipper import LogShipper
from solo.objects.state.store import StateStore
from solo.objects.storage import Storage
from solo.objects.tables import SOLO_TABLES_DDL
from solo.objects.tracing import OFF, Tracing
from solo.objects.websockets import (
    EVENTS,
    ROUTED_RETAIN_MS,
    SOCKET_METHOD,
    SocketBook,
    SocketRequest,
    WebSocket,
    WebSockets,
    accepts_sockets,
    decode_data,
    is_socket_id,
)

if TYPE_CHECKING:
    from opentelemetry.trace import Span

log = logging.getLogger(__name__)

# Expired call records are deleted every this many batches (a busy object) or this often (an
# object with few calls, which would otherwise keep them for hours past their time to live).
_PRUNE_EVERY_BATCHES = 1000
_PRUNE_EVERY_MS = 60_000
_MAX_MESSAGE_CHARS = 64 * 1024  # of an error message kept in a call's outcome
DEFAULT_CALL_TIME_LIMIT_S = 30.0
PROGRESS_HANDLER_STEPS = 1000  # SQLite VM steps between looks at the running call's deadline

# solo's own transaction statements carry a tag that no user statement has. The guard
# (sql.UserCodeGuard) sees a statement only when it is prepared, and sqlite3 reuses prepared
# statements by their exact text: without the tag, user code running "COMMIT" or
# "SAVEPOINT solo_call" would get solo's statement, prepared while the guard was off.
_TAG = f" /* solo {secrets.token_hex(8)} */"
_BEGIN = "BEGIN IMMEDIATE" + _TAG
_COMMIT = "COMMIT" + _TAG
_ROLLBACK = "ROLLBACK" + _TAG
_SAVEPOINT = "SAVEPOINT solo_call" + _TAG
_ROLLBACK_TO_SAVEPOINT = "ROLLBACK TO solo_call" + _TAG
_RELEASE_SAVEPOINT = "RELEASE solo_call" + _TAG
_RECORD = "SELECT payload FROM _solo_calls WHERE call_id = ?"
_OWN_METHODS = frozenset({FIRE_METHOD, SOCKET_METHOD, ACTION_METHOD})  # solo's, not the class's: alarms, sockets
_EPOCH_AND_RECORD = (
    "SELECT (SELECT value FROM _solo_meta WHERE key = 'epoch'), (SELECT payload FROM _solo_calls WHERE call_id = ?)"
)


class ObjectInstance:
    def __init__(
        self,
        cls: type[DurableObject],
        *,
        object_id: str,
        name: str,
        path: Path,
        epoch: int,
        call_retention_ms: int = 24 * 3600 * 1000,
        clock_ms: Callable[[], int] = wall_clock_ms,
        store: StateStore | None = None,
        head_seq: int = 0,
        log_bytes: int | None = None,
        namespace: str = "default",
        tenant: str = DEFAULT_TENANT,
        transport: Transport | None = None,
        call_timeout_s: float = 30.0,
        timer: CallTimer | None = None,
        poison_after: int = 0,
        debug: bool = False,
        max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES,
        on_shipped: Callable[[float, int], None] | None = None,
        tracing: Tracing = OFF,
    ) -> None:
        self.cls = cls
        self.object_id = object_id
        self.name = name
        self.path = path
        self.epoch = epoch
        self.call_retention_ms = call_retention_ms
        self.clock_ms = clock_ms
        self._guard = UserCodeGuard()
        # Without a worker's timer (and its watchdog thread) only SQL statements are interrupted.
        self._timer = timer or CallTimer(DEFAULT_CALL_TIME_LIMIT_S)
        self._running: Running | None = None  # the limit of the user code now running
        self.poison_after = poison_after  # a call whose workers died or hung this often is not run (0: never)
        self.debug = debug  # callers get the messages of user code's unexpected exceptions (SOLO_DEBUG)
        self.max_result_bytes = max_result_bytes  # of a call's result as JSON (SOLO_MAX_RESULT_BYTES)
        self._on_shipped = on_shipped  # (seconds, bytes) of each shipment, for metrics
        self._conn: sqlite3.Connection | None = None
        self._unsynced = False  # a suspend closed the file without syncing its checkpoint
        self._statements: sqlite3.Cursor | None = None  # solo's own statements on _conn (_solo_sql)
        self._user: DurableObject | None = None
        self._batches = 0
        self._next_prune_ms = 0
        self._store = store
        self._head_seq = head_seq
        self._log_bytes = log_bytes  # shipped since the last snapshot, as the takeover read it (None: read it)
        self.shipper: LogShipper | None = None  # None: a local-only instance (tests of the object model)
        self.ref = f"{cls.__name__}/{name}"
        self.namespace = namespace
        self.tenant = tenant
        self._tracing = tracing
        self._shipping: list[str] = []  # the traces of the batch whose commit ships next
        self.alarms = Alarms(cls, object_id, clock_ms, tracing.current if tracing.on else None)
        self._alarm_changes: list[tuple[str, int | None]] = []  # shipped, not yet announced to the scheduler
        self._scope: CallScope | None = None  # the running call's, while user code runs
        self._unsent: list[Call] = []  # committed outbox entries the host has not sent yet
        self._sent: list[str] = []  # sent outbox entries to delete in the next transaction
        # WebSockets: the registry and the messages for gateways (objects/websockets.py)
        self.sockets = SocketBook(object_id, [object_id, cls.__name__, name, tenant], clock_ms)
        self._unrouted: list[tuple[int, str]] = []  # committed socket messages the host has not routed yet
        # Routed socket messages: (up to this outbox seq, when), deleted ROUTED_RETAIN_MS after routing
        # by a later transaction; those at or below _leftover_seq (routed again at hydrate) at once.
        self._routed: deque[tuple[int, int]] = deque()
        self._leftover_seq = 0
        # Hydrate's commits wait for the first batch's shipment, which records this schema version.
        self._schema_to_ship: int | None = None
        self._reroute = False  # a resume event ran: route the whole outbox again after this batch
        # Writes to shared tables (self.shared), carried by the shipment of the commit they belong to.
        self.shared = SharedDatabase(store.engine) if store is not None else None
        self._directory = ObjectDirectory(
            namespace=namespace,
            tenant=tenant,
            registry=registry(),
            scope=lambda: self._scope,
            transport=transport,
            timeout_s=call_timeout_s,
            tracing=tracing,
        )

    # -- lifecycle -------------------------------------------------------

    def hydrate(self, *, ship_with_first_batch: bool = False) -> BatchResult:
        """Restore the durable state, claim it for this epoch, migrate, and run on_start().

        Returns what must be released now that the claim is shipped: the outbox entries a
        former owner shipped but may never have sent, with on_start()'s own, and every alarm
        of the object (a former owner may have died between shipping and announcing).

        `ship_with_first_batch`: the caller runs a batch next. Hydrate's commits are then shipped
        by that batch's shipment (one shipment instead of two, fenced by the same epoch and
        carrying the schema version), and what they release is released with the batch's
        outcomes; this returns nothing to release. (Unless on_start() wrote to shared tables:
        their transaction ships at once, as without this.)
        """
        with self._log_fields():
            return self._hydrate(ship_with_first_batch)

    def _hydrate(self, ship_with_first_batch: bool) -> BatchResult:
        fresh = False  # a new object's file, made from local_copy's template
        if self._store is not None:
            fresh = prepare_local_file(self._store, self.object_id, self.path, self._head_seq)
            log_bytes = self._log_bytes
            if log_bytes is None:
                head = self._store.head(self.object_id)
                log_bytes = head.log_bytes if head else 0
            self.shipper = LogShipper(
                self._store,
                self.object_id,
                self.epoch,
                self.path,
                self._head_seq,
                log_bytes,
                on_shipped=self._on_shipped,
            )
        self._open()
        try:
            assert self._conn is not None
            # No fdatasync while hydrating (a new WAL's header is synced at its first commit): the
            # file is trusted again only after a clean close, which syncs as usual.
            self._conn.execute("PRAGMA synchronous=OFF")
            if self.shipper is not None:
                self.shipper.deferred = True  # claim, migrations and on_start ship as one record
            self.sockets.epoch = self.epoch
            self._claim(fresh=fresh)  # and migrate
            user = self.cls.__new__(self.cls)
            user._solo_ctx = self._context()
            # Calls made by on_start() get ids derived from this activation: its sends commit with it.
            scope = CallScope(f"start\x00{self.object_id}\x00{self.epoch}", [self.ref], self._record_send)
            self._transaction(user.on_start, what="on_start()", scope=scope)
            deferred = False
            if self.shipper is not None:
                assert self._conn is not None
                self.shipper.deferred = False
                shared = self._take_shared()
                if ship_with_first_batch and shared is None:
                    deferred = True  # the first batch's _commit ships these commits with its own
                    self._schema_to_ship = self.schema_version()
                else:
                    with self._tracing.ship(()):  # in the hydrate span, if there is one
                        # With the schema version: older code refuses the object once its claim is durable.
                        self.shipper.after_commit(
                            self._conn, self._index_writes(), shared, schema_version=self.schema_version()
                        )
                    self._announce_all_alarms()
            # Entries left by a former owner that shipped but did not send, and on_start()'s own.
            self._sent = []  # _read_outbox adds the entries it drops: deleted with the next transaction
            self._unsent = self._read_outbox()
            self._unrouted = self.sockets.read_outbox()  # a former owner's unrouted messages, and on_start()'s
            # Already kept by the former owner (or never routed): routed now, they need not wait again.
            self._leftover_seq = max((seq for seq, _ in self._unrouted), default=0)
            self._conn.execute(f"PRAGMA synchronous={SYNCHRONOUS}")
            self._user = user
        except BaseException:
            self.close()
            raise
        if deferred:
            return BatchResult([], [], [], [], 0)  # nothing is durable yet: released with the first batch
        return self._released([])

    def _announce_all_alarms(self) -> None:
        """After hydrate's commits shipped: the shared index already matches the durable state (both
        move in one transaction), but a former owner may have died between shipping and announcing."""
        assert self._conn is not None
        rows = {r.name: r.next_ms for r in read_rows(self._conn)}
        removed = [(name, ms) for name, ms in self._alarm_changes if name not in rows]  # by the same shipment
        self._alarm_changes = removed + list(rows.items())

    def stop(self) -> BatchResult:
        """Before a graceful eviction: run on_stop() in a transaction of its own, commit and ship it.

        Returns what its commit released (sends, alarms, socket messages). Best effort: if it
        raises or runs past the time limit, its writes roll back, the failure is logged, and
        the object is evicted all the same. OwnershipLost is raised: nothing of it shipped.
        """
        user = self._user
        if user is None or type(user).on_stop is DurableObject.on_stop:
            return self._released([])
        with self._log_fields():
            self.resume()
            scope = CallScope(f"stop\x00{self.object_id}\x00{self.epoch}", [self.ref], self._record_send)
            try:
                self._transaction(user.on_stop, what="on_stop()", scope=scope)
            except StartFailed:  # logged by _transaction; its writes were rolled back
                return self._released([])
            self._unsent.extend(scope.sends)
            self._unrouted = self.sockets.read_outbox()
            return self._released([])

    @property
    def start_shipped(self) -> bool:
        """Hydrate's commits are durable (False while they wait for the first batch's shipment)."""
        return self._schema_to_ship is None

    @property
    def is_open(self) -> bool:
        return self._conn is not None

    def suspend(self) -> None:
        """Close the database file but keep the in-memory object (to bound open files).

        The checkpoint that closing makes is not synced: the file is trusted after a crash only
        with a clean marker, and close() syncs it before writing one."""
        if self._conn is not None:
            self._conn.execute("PRAGMA synchronous=OFF")
            self._unsynced = True
            self._disconnect()

    def _disconnect(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
            self._statements = None
            self.alarms.conn = None
            self.sockets.conn = None
            if self.shipper is not None:
                self.shipper.connection_closed()

    def resume(self) -> None:
        if self._conn is None:
            self._open()
            assert self._user is not None
            self._user._solo_ctx = self._context()

    def close(self) -> None:
        """Close for good; a fully shipped file is marked clean so this worker may reuse it."""
        if self.shared is not None:
            self.shared.abort()
        self._disconnect()  # synced, as its connection was opened
        if self._unsynced:  # an earlier suspend's checkpoint may not be on disk yet
            sync_file(self.path)
            self._unsynced = False
        if self.shipper is not None and self._user is not None:
            self.shipper.mark_clean()
        self._user = None

    def discard(self) -> None:
        """Close for good and remove the file (its room is needed): the durable state is in the shared database."""
        if self.shared is not None:
            self.shared.abort()
        self._disconnect()
        discard_local_file(self.path)
        self._user = None

    @property
    def seq(self) -> int:
        """The last durable log record of this object's state."""
        return self.shipper.seq if self.shipper is not None else 0

    # -- calls -------------------------------------------------------------

    def run_batch(self, calls: Sequence[Call]) -> BatchResult:
        """Run calls in order in one transaction, one savepoint per call; commit and ship it.

        Raises OwnershipLost (nothing committed) if another owner has claimed
        the database since this instance was hydrated.
        """
        if self._user is None:
            raise RuntimeError("run_batch on an instance that is not hydrated")
        with self._log_fields():
            return self._run_batch(calls)

    def _log_fields(self) -> contextlib.AbstractContextManager[None]:
        """Every log line written while this object runs names it, its tenant and its epoch."""
        return log_fields.bound(object=self.ref, tenant=self.tenant, epoch=self.epoch)

    def _run_batch(self, calls: Sequence[Call]) -> BatchResult:
        self.resume()
        conn = self._conn
        assert conn is not None
        self._solo_sql(_BEGIN)
        sends: list[Call] = []
        socket_messages: list[tuple[int, str]] = []
        try:
            # The epoch check and the first call's exactly-once lookup in one statement: each of
            # solo's statements lets go of the interpreter lock, which other threads then take.
            stored, recorded = self._solo_sql(_EPOCH_AND_RECORD, (calls[0].call_id if calls else None,)).fetchone()
            self._check_stored_epoch(0 if stored is None else int(stored))
            wrote = self._delete_sent(conn)
            outcomes = []
            last = len(calls) - 1
            for index, call in enumerate(calls):
                if index:
                    recorded = self._recorded(call)
                with log_fields.bound(call_id=call.call_id):
                    outcome = self._run_one(
                        conn, call, recorded, sends, socket_messages, last=index == last, first=not (index or wrote)
                    )
                outcomes.append(outcome)
            self._batches += 1
            if self._batches % _PRUNE_EVERY_BATCHES == 0 or self.clock_ms() >= self._next_prune_ms:
                self._prune_call_records(conn)
            if self._tracing.on:
                self._shipping = [c.trace for c in calls]
        except BaseException:
            self._rollback(conn)
            self.alarms.dirty.clear()
            self.sockets.drop_pending()
            self._reroute = False
            if self.shared is not None:
                self.shared.abort()
            raise
        self._commit(conn)
        self._sent = []
        self._unsent.extend(sends)
        if self._reroute:  # everything still in the outbox, this batch's messages included, in order
            self._reroute = False
            self._unrouted = self.sockets.read_outbox()
        else:
            self._unrouted.extend(socket_messages)
        return self._released(outcomes)

    def _released(self, outcomes: list[Outcome]) -> BatchResult:
        """Everything committed and shipped that is not yet released, handed over once."""
        sends, self._unsent = self._unsent, []
        alarms, self._alarm_changes = self._alarm_changes, []
        routed, self._unrouted = self._unrouted, []
        return BatchResult(outcomes, sends, alarms, [m for _, m in routed], max((s for s, _ in routed), default=0))

    def _recorded(self, call: Call) -> str | bytes | None:
        """The outcome recorded for the call id, if it ran before (exactly once: it is not run again)."""
        row = self._solo_sql(_RECORD, (call.call_id,)).fetchone()
        return None if row is None else row[0]

    def _run_one(
        self,
        conn: sqlite3.Connection,
        call: Call,
        recorded: str | bytes | None,
        sends: list[Call],
        socket_messages: list[tuple[int, str]],
        *,
        last: bool = False,
        first: bool = False,
    ) -> Outcome:
        """Run one call of the batch in a savepoint of its own (`recorded`: its outcome, if it ran before).

        The batch's last call leaves its savepoint to the COMMIT, which releases it. A method call
        `first` to write in the transaction needs none: if it fails, the transaction itself is rolled
        back and begun again, which undoes exactly its writes (_restart)."""
        if recorded is not None:
            return Outcome.from_payload(recorded)
        if self.poison_after and call.crashes >= self.poison_after:
            return self._record(conn, call, self._poisoned(call))
        # A closing socket leaves the registry whether its close handler succeeds or not.
        closing = self._closing_socket(call) if call.method == SOCKET_METHOD else None
        savepoint = not (first and call.method not in _OWN_METHODS)  # alarms and sockets keep theirs
        if savepoint:
            self._solo_sql(_SAVEPOINT)
        scope = CallScope(call.call_id, [*call.chain, self.ref], self._record_send)
        fire: Fire | None = None
        is_fire = call.method == FIRE_METHOD
        if self.shared is not None:
            self.shared.begin_call()
        if is_fire:
            fire = self.alarms.begin_fire(str(call.args.get("name")), int(call.args.get("due_ms") or 0))
        with self._traced_run(call, fire) as span:
            if is_fire:
                outcome = self._run_fire(call, fire, scope)
            elif call.method == SOCKET_METHOD:
                outcome = self._run_socket_event(call, scope, closing)
            elif call.method == ACTION_METHOD:
                outcome = self._run_alarm_action(call)
            else:
                outcome = self._invoke(call, scope)
            self._tracing.ended(span, outcome)
        if scope.broken is not None:  # transient: fail the batch uncommitted; the call runs again later
            self.alarms.abandon_fire()
            self.sockets.drop_pending()
            raise scope.broken
        if self.shared is not None:  # the call's shared writes go with its own
            self.shared.end_call(outcome.ok)
        if outcome.ok:
            socket_messages.extend(self.sockets.take_pending())  # in the savepoint: they commit with the call
        else:
            self.sockets.drop_pending()
        if outcome.ok:
            sends.extend(scope.sends)
            if fire is not None:
                self.alarms.fire_succeeded(fire)
        elif savepoint:  # its writes and its outbox entries go together
            self._solo_sql(_ROLLBACK_TO_SAVEPOINT)
            if fire is not None:  # after the rollback: the retry is recorded, the handler's writes are not
                error = outcome.error or {}
                self.alarms.fire_failed(fire, f"{error.get('type') or error.get('code')}: {error.get('message')}")
        else:
            self._restart(conn)
        if savepoint and not last:  # the next call's savepoint must not nest in this one
            self._solo_sql(_RELEASE_SAVEPOINT)
        if is_fire:
            return outcome  # a fire runs at most once per occurrence because of its alarm's row
        return self._record(conn, call, outcome)

    def _restart(self, conn: sqlite3.Connection) -> None:
        """The failed call was the transaction's first write: roll it all back and begin again."""
        if not conn.in_transaction:  # SQLite ended it (an interrupted write, a full disk): the batch fails
            raise sqlite3.OperationalError("the batch's transaction was rolled back by SQLite")
        self._solo_sql(_ROLLBACK)
        self._solo_sql(_BEGIN)
        self._check_epoch(conn)

    def _traced_run(self, call: Call, fire: Fire | None) -> contextlib.AbstractContextManager[Span | None]:
        """The call's run span (objects/tracing.py); an alarm's fire links to the call that set the alarm."""
        if not self._tracing.on:
            return self._tracing.run(call, call.method, epoch=self.epoch)  # nothing, at no cost
        what, link = call.method, ""
        if fire is not None:
            what = "alarm" if fire.row.name == ALARM else fire.row.method
            link = self.alarms.trace_of(fire.row.name)
        elif call.method == SOCKET_METHOD:
            what = f"web_socket_{call.args.get('event')}" if call.args.get("event") in EVENTS else what
        return self._tracing.run(call, what, epoch=self.epoch, link=link)

    def _record(self, conn: sqlite3.Connection, call: Call, outcome: Outcome) -> Outcome:
        """Exactly once: the outcome commits with the call's effects; a repeat of the call gets it back."""
        self._solo_sql(
            "INSERT INTO _solo_calls (call_id, payload, finished_ms) VALUES (?, ?, ?)",
            (call.call_id, outcome.payload(), self.clock_ms()),
        )
        return outcome

    def _poisoned(self, call: Call) -> Outcome:
        log.error(
            "%s.%s (call %s) is poisoned: its worker died or hung %d times running it; not run again",
            self.ref,
            call.method,
            call.call_id,
            call.crashes,
        )
        message = (
            f"{self.ref}.{call.method} was not run: a worker died or hung {call.crashes} times while running it"
            " (SOLO_POISON_AFTER)"
        )
        return Outcome.failure(call.call_id, "poisoned", message)

    def _invoke(self, call: Call, scope: CallScope) -> Outcome:
        spec = self.cls.__solo_methods__.get(call.method)
        if spec is None:  # the method was removed by a deploy after the call was queued
            return Outcome.failure(
                call.call_id, "unknown_method", f"{self.cls.__name__} has no rpc method {call.method!r}"
            )
        if self.ref in call.chain:  # callers check this first; a call that waits on itself never runs
            error = cycle_error(call.chain, self.ref, call.method)
            return Outcome.failure(call.call_id, error.code, error.message, type_=type(error).__name__)
        try:
            kwargs = spec.bind(call.args)
        except SoloError as exc:
            return Outcome.failure(call.call_id, exc.code, exc.message, type_=type(exc).__name__)
        outcome = self._run_user(call.call_id, scope, lambda: getattr(self._user, call.method)(**kwargs), call.method)
        if not outcome.ok:
            return outcome
        result = outcome.result
        # A result that cannot be sent is a failed call, and so is one too large to send: failed
        # here, the call's writes are rolled back as if the method had raised. RecursionError (a
        # result nested too deeply) must be caught here too: escaping, it would fail the drain and
        # the call would be retried forever, leaving the object unable to serve.
        try:
            # As the caller gets it: compact UTF-8 JSON (lone surrogates are not UTF-8).
            encoded = json.dumps(result, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
        except (TypeError, ValueError, RecursionError) as exc:  # UnicodeEncodeError is a ValueError
            return Outcome.failure(
                call.call_id, "method_error", f"result is not JSON-serialisable: {exc}", type_=type(exc).__name__
            )
        if len(encoded) > self.max_result_bytes:
            limit = f"the limit of {self.max_result_bytes} bytes (SOLO_MAX_RESULT_BYTES)"
            return self._result_too_large(call, f"{len(encoded)} bytes of JSON, more than {limit}")
        # Recorded as ASCII JSON (up to three times longer), and no value in the file may pass the
        # connection's length limit: a result that could not be recorded would fail the whole batch.
        if (
            len(encoded) > MAX_RECORDED_RESULT_BYTES // 3
            and (recorded := len(dumps(result))) > MAX_RECORDED_RESULT_BYTES
        ):
            held = f"a call's record holds at most {MAX_RECORDED_RESULT_BYTES}"
            return self._result_too_large(
                call, f"{recorded} bytes of JSON with its non-ASCII characters escaped; {held}"
            )
        # Printable ASCII as encoded (DEL is escaped in ASCII JSON): the payload's JSON holds these very
        # bytes, so the result is not encoded again for it.
        ascii_json = encoded.isascii() and b"\x7f" not in encoded
        return Outcome.success(call.call_id, result, result_json=encoded.decode() if ascii_json else None)

    def _result_too_large(self, call: Call, size: str) -> Outcome:
        error = ResultTooLarge(f"{self.ref}.{call.method} returned {size}; its writes were rolled back")
        return Outcome.failure(call.call_id, error.code, error.message, type_=type(error).__name__)

    def _run_fire(self, call: Call, fire: Fire | None, scope: CallScope) -> Outcome:
        """An alarm or schedule fire: the handler's return value is not kept."""
        if fire is None:  # no longer due (replaced, deleted, already fired) or a skipped missed occurrence
            return Outcome.success(call.call_id, {"fired": False})
        user = self._user
        if fire.row.name == ALARM:  # alarm(self, info) is the user class's own: DurableObject has none
            handler = getattr(user, "alarm")  # noqa: B009
            outcome = self._run_user(call.call_id, scope, lambda: handler(fire.info), "alarm")
        else:
            method, kwargs = fire.row.method, fire.row.kwargs

            def scheduled() -> object:
                # Checked when the schedule was set or imported; again here, as the row is the file's.
                check_schedule_method(self.cls, method, kwargs)
                return getattr(user, method)(**kwargs)

            outcome = self._run_user(call.call_id, scope, scheduled, method)
        if not outcome.ok:
            return outcome
        info = fire.info
        return Outcome.success(
            call.call_id, {"fired": True, "scheduled_ms": info.scheduled_ms, "retry_count": info.retry_count}
        )

    # -- WebSockets (objects/websockets.py) ------------------------------------------

    def _closing_socket(self, call: Call) -> WebSocket | None:
        """For a close event: the socket, taken out of the registry (outside the handler's savepoint)."""
        socket_id = call.args.get("socket")
        if call.args.get("event") != "close" or not is_socket_id(socket_id):
            return None
        ws = self.sockets.get(str(socket_id))
        if ws is not None:
            self.sockets.forget(ws.id)
        return ws

    def _run_alarm_action(self, call: Call) -> Outcome:
        """An operator's cancel or fire-now of one alarm: a change of the object's own table, shipped
        and announced like any alarm a call changed."""
        action, name = call.args.get("action"), call.args.get("name")
        if not isinstance(name, str):
            return Outcome.failure(call.call_id, "invalid_arguments", "an alarm action names the alarm")
        if action == "cancel":
            if not self.alarms.cancel(name):
                return self._no_alarm(call, name)
            return Outcome.success(call.call_id, {"cancelled": True})
        if action == "fire_now":
            due_ms = self.alarms.fire_now(name)
            if due_ms is None:
                return self._no_alarm(call, name)
            return Outcome.success(call.call_id, {"due_ms": due_ms})
        return Outcome.failure(call.call_id, "invalid_arguments", f"no alarm action {str(action)[:40]!r}")

    def _no_alarm(self, call: Call, name: str) -> Outcome:
        what = "alarm" if name == ALARM else f"schedule {name[:200]!r}"
        error = AlarmNotFound(f"{self.ref} has no {what}")
        return Outcome.failure(call.call_id, error.code, error.message, type_=type(error).__name__)

    def _run_socket_event(self, call: Call, scope: CallScope, closing: WebSocket | None) -> Outcome:
        """A socket's connect, message, close or error event, run like a call (and recorded like one)."""
        args = call.args
        event, socket_id, gateway = args.get("event"), args.get("socket"), args.get("gateway")
        if event not in EVENTS or not is_socket_id(socket_id) or not is_socket_id(gateway):
            return Outcome.failure(call.call_id, "invalid_arguments", "not a socket event solo makes")
        socket_id, gateway = str(socket_id), str(gateway)
        user = self._user
        if event == "resume":  # the gateway's inbox may have been lost with Redis: route the outbox again
            self._reroute = True
            return Outcome.success(call.call_id, None)
        if event == "connect":
            return self._connect(call, scope, socket_id, gateway)
        ws = closing if event == "close" else self.sockets.get(socket_id)
        if ws is None:  # closed by the object, or unknown to a restored state: the gateway closes it
            if event != "close":
                self.sockets.refuse_unknown(socket_id, gateway)
            return Outcome.success(call.call_id, {"known": False})
        known: WebSocket = ws
        body: Callable[[], object]
        if event == "message":
            kind = "bytes" if "bytes" in args else "text"
            message = decode_data(kind, str(args.get(kind, "")))
            what = "web_socket_message"
            body = lambda: getattr(user, what)(known, message)  # noqa: E731
        elif event == "close":
            what = "web_socket_close"
            code, reason = int(args.get("code") or 1005), str(args.get("reason") or "")
            body = lambda: getattr(user, what)(known, code, reason)  # noqa: E731
        else:
            what = "web_socket_error"
            error = str(args.get("error") or "")
            body = lambda: getattr(user, what)(known, error)  # noqa: E731
        if not callable(getattr(user, what, None)):
            return Outcome.success(call.call_id, None)
        return self._run_user(call.call_id, scope, body, what, log_failure=True)

    def _connect(self, call: Call, scope: CallScope, socket_id: str, gateway: str) -> Outcome:
        if not accepts_sockets(self.cls):  # the class changed since the gateway looked
            error = WebSocketsNotSupported(f"{self.cls.__name__} does not accept WebSockets")
            return Outcome.failure(call.call_id, error.code, error.message, type_=type(error).__name__)
        if self.sockets.get(socket_id) is None:
            ws = self.sockets.newcomer(socket_id, gateway)
            handler = getattr(self._user, "web_socket_connect", None)
            request = SocketRequest.of(call.args.get("request"))
            body: Callable[[], object] = (lambda: handler(ws, request)) if callable(handler) else (lambda: ws.accept())
            outcome = self._run_user(call.call_id, scope, body, "web_socket_connect")  # a refusal is no fault
            if not outcome.ok:
                return outcome
            if not ws.accepted:
                message = f"{self.cls.__name__}.web_socket_connect returned without ws.accept()"
                return Outcome.failure(call.call_id, "not_accepted", message, status=403, type_="UserError")
        return Outcome.success(call.call_id, {"accepted": True, "auto_response": self.sockets.auto_response()})

    def ack_routed(self, up_to_seq: int) -> None:
        """Socket messages up to this outbox seq reached their gateways' inboxes: kept for a while, then deleted.

        Kept ROUTED_RETAIN_MS: Redis keeps nothing on disk, so until the gateway has popped them
        the outbox is their only durable copy (a resume event routes them again).
        """
        self._routed.append((up_to_seq, self.clock_ms()))

    def _deletable_seq(self, take: bool) -> int:
        """The outbox seq up to which routed messages are kept long enough (0: none); `take` forgets them."""
        cutoff, seq = self.clock_ms() - ROUTED_RETAIN_MS, 0
        for index, (up_to, routed_ms) in enumerate(self._routed):
            if routed_ms > cutoff and up_to > self._leftover_seq:
                if take:
                    for _ in range(index):
                        self._routed.popleft()
                return seq
            seq = max(seq, up_to)
        if take:
            self._routed.clear()
        return seq

    @contextlib.contextmanager
    def _user_code(self, what: str, scope: CallScope | None = None) -> Iterator[Running]:
        """Around user code: its SQL is guarded, its calls out use `scope`, and it runs under the time limit."""
        self._scope = scope
        try:
            with self._guard.running_user_code(), self._timer.limit(f"{self.ref}.{what}") as running:
                self._running = running
                try:
                    yield running
                finally:
                    self._running = None
        finally:
            self._scope = None

    def _past_deadline(self) -> int:
        """SQLite's progress handler: non-zero abandons the running statement."""
        return 1 if self._timer.expired(self._running) else 0

    def _about(self, call_id: str | None = None) -> str:
        """What a log line about this object's user code says besides its name: call, tenant, epoch."""
        shown = call_id or log_fields.current().get("call_id")  # on_start: the call that brought the object up
        call = f"call {shown}, " if shown else ""
        return f"({call}tenant {self.tenant}, epoch {self.epoch})"

    def _time_limit_exceeded(self, call_id: str, what: str) -> Outcome:
        message = f"{self.ref}.{what} ran past the call time limit ({self._timer.limit_s:g} s) and was interrupted"
        log.warning("%s %s", message, self._about(call_id))
        return Outcome.failure(call_id, "time_limit_exceeded", message, type_="CallInterrupted")

    def _run_user(
        self, call_id: str, scope: CallScope, body: Callable[[], object], what: str, *, log_failure: bool = False
    ) -> Outcome:
        """Run user code for a call: its exceptions become the call's failure.

        A call that ran past its deadline fails with `time_limit_exceeded`, however it
        ended: interrupted, failing on an interrupted SQL statement, or returning late.
        """
        with log_fields.bound(method=what):  # the code running, also on the lines that log its failure
            return self._run_user_logged(call_id, scope, body, what, log_failure)

    def _run_user_logged(
        self, call_id: str, scope: CallScope, body: Callable[[], object], what: str, log_failure: bool
    ) -> Outcome:
        running: Running | None = None
        try:
            with self._user_code(what, scope) as running:
                result = body()
            outcome = Outcome.success(call_id, result)
        except CallInterrupted:
            return self._time_limit_exceeded(call_id, what)
        except Exception as exc:  # logged by _failure, as its kind deserves
            if out_of_space(exc):  # this worker's disk, not the call: the batch is abandoned, not answered
                raise self._disk_full(exc) from exc
            outcome = self._failure(call_id, exc, what, log_failure=log_failure)
        if self._timer.expired(running):
            return self._time_limit_exceeded(call_id, what)
        return outcome

    def _failure(self, call_id: str, exc: Exception, what: str, *, log_failure: bool = False) -> Outcome:
        """The outcome of a call whose user code raised `exc`.

        UserError and solo's own errors are meant for the caller and keep their messages.
        Any other exception is a bug in the user's code: the caller gets its type, and its
        message and traceback go to this worker's log (to the caller too under SOLO_DEBUG),
        as they may hold anything the code had at hand.

        Each is logged with the call id, the object, its tenant and epoch: a UserError (an
        answer the method chose) at DEBUG; a remote call's error it let through at INFO (the
        callee's worker logged its own); solo's errors raised in user code (SQL refused, a
        schedule that cannot be set) at WARNING and any other exception at ERROR, both with
        the traceback.
        """
        kind = type(exc).__name__
        if log_failure and isinstance(exc, UserError):  # a socket event has no caller to tell: log it
            log.error("%s.%s (event %s) raised %s", self.ref, what, call_id, kind, exc_info=exc)
        if isinstance(exc, UserError):
            log.debug("%s.%s answered %s: %s %s", self.ref, what, exc.code, exc.message, self._about(call_id))
            message, details = self._bounded_details(exc.message, exc.details)
            return Outcome.failure(call_id, exc.code, message, status=exc.status, type_="UserError", details=details)
        if isinstance(exc, RemoteCallError):  # uncaught: this call fails as the remote one did
            log.info("%s.%s failed as a call it made did: %s %s", self.ref, what, exc.code, self._about(call_id))
            message, details = self._bounded_details(exc.message, exc.details)
            return Outcome.failure(call_id, exc.code, message, status=exc.status, type_=kind, details=details)
        if isinstance(exc, SoloError):
            log.warning("%s.%s raised %s %s", self.ref, what, kind, self._about(call_id), exc_info=exc)
            return Outcome.failure(call_id, exc.code, _clip(exc.message), type_=kind)
        log.error("%s.%s raised %s %s", self.ref, what, kind, self._about(call_id), exc_info=exc)
        if self.debug:
            message = _clip(str(exc))
        else:
            message = f"{self.cls.__name__}.{what} raised {kind}; its message is in the worker's log (call {call_id})"
        return Outcome.failure(call_id, "method_error", message, type_=kind)

    def _bounded_details(self, message: str, details: dict[str, Any] | None) -> tuple[str, dict[str, Any] | None]:
        """A UserError's details travel like a result: past SOLO_MAX_RESULT_BYTES they are left out, said so."""
        if details is not None and len(json.dumps(details, allow_nan=False)) > self.max_result_bytes:
            return _clip(f"{message} (details left out: more than {self.max_result_bytes} bytes)"), None
        return _clip(message), details

    def _told(self, exc: BaseException) -> str:
        """What a caller is told of an exception in user code that the worker has logged."""
        if self.debug or isinstance(exc, SoloError):  # solo's own errors are written for callers
            return _clip(f"{type(exc).__name__}: {exc}")
        return f"{type(exc).__name__} (its message is in the worker's log)"

    # -- alarms ----------------------------------------------------------------

    def alarm_rows(self) -> list[AlarmRow]:
        """Every alarm row of this object (for tests and diagnostics)."""
        assert self._conn is not None
        return read_rows(self._conn)

    def _index_writes(self) -> list[IndexUpdate]:
        """The index rows of the alarms changed since the last shipment, to ship with it."""
        if not self.alarms.dirty:
            return []
        assert self._conn is not None
        names = sorted(self.alarms.dirty)
        self.alarms.dirty.clear()
        rows = read_rows(self._conn, names)
        present = {r.name for r in rows}
        removed = [n for n in names if n not in present]
        update = IndexUpdate(
            self.object_id, self.namespace, self.cls.__name__, self.name, rows, removed, tenant=self.tenant
        )
        self._alarm_changes += update.due
        return [update]

    # -- the outbox ------------------------------------------------------------

    def ack_outbox(self, call_ids: Sequence[str]) -> None:
        """These were enqueued: delete them in the next transaction (or flush_outbox)."""
        self._sent.extend(call_ids)

    def flush_outbox(self) -> None:
        """Delete sent entries now, in a transaction of their own (when no batch follows)."""
        if not (self._sent or self._deletable_seq(take=False)) or self._conn is None:
            return
        conn = self._conn
        conn.execute(_BEGIN)
        try:
            self._check_epoch(conn)
            self._delete_sent(conn)
        except BaseException:
            self._rollback(conn)
            raise
        self._commit(conn)
        self._sent = []

    def pending_outbox(self) -> list[Call]:
        """Every entry in the outbox table (for tests and diagnostics)."""
        assert self._conn is not None
        return self._read_outbox()

    def _record_send(self, call: Call) -> None:
        assert self._conn is not None
        self._conn.execute(
            "INSERT OR IGNORE INTO _solo_outbox (call_id, call, created_ms) VALUES (?, ?, ?)",
            (call.call_id, call.to_json(), self.clock_ms()),
        )

    def _read_outbox(self) -> list[Call]:
        """The committed entries, each parsed as a call this object could have sent (image_rows).

        The file may have come from outside (an import, a restore of one): an entry whose target
        is not named by the id solo computes for it, or that waits for a reply, would make the
        host act on a path or a Redis key it names. Such an entry is logged and dropped, never sent.
        """
        assert self._conn is not None
        calls = []
        for call_id, raw in self._conn.execute("SELECT call_id, call FROM _solo_outbox ORDER BY seq"):
            try:
                call = parse_sent_call(raw, self.namespace, tenant=self.tenant)
                if call.call_id != call_id:
                    raise InvalidRow("_solo_outbox", f"the row's call_id {call_id!r} is not its call's")
            except InvalidRow as exc:
                log.error("%s: dropped an entry of its outbox instead of sending it: %s", self.ref, exc.message)
                self._sent.append(call_id)
                continue
            calls.append(call)
        return calls

    def _delete_sent(self, conn: sqlite3.Connection) -> bool:
        """Delete what was sent and routed; whether anything was to delete (the transaction wrote)."""
        if deletable := self._deletable_seq(take=True):
            self.sockets.delete_routed(deletable)
        for start in range(0, len(self._sent), 500):
            chunk = self._sent[start : start + 500]
            conn.execute(f"DELETE FROM _solo_outbox WHERE call_id IN ({','.join('?' * len(chunk))})", chunk)
        return bool(deletable or self._sent)

    # -- internals ---------------------------------------------------------

    def _open(self) -> None:
        conn, defensive = open_object_connection(self.path)
        conn.set_authorizer(self._guard)
        self._guard.attach(conn, defensive=defensive)
        conn.set_progress_handler(self._past_deadline, PROGRESS_HANDLER_STEPS)
        self._conn = conn
        self._statements = conn.cursor()
        self.alarms.conn = conn
        self.sockets.conn = conn

    def _claim(self, *, fresh: bool = False) -> None:
        """Create solo's tables, stamp this epoch into the file and apply the class's pending
        migrations, in one commit (shipped with the rest of hydrate's).

        Each migration runs in a savepoint of its own: one that fails is rolled back, and the
        claim and the migrations before it are committed, as when each had a commit of its own.
        `fresh`: a new object's file (local_copy's template), whose tables are made and hold no
        trigger and no call record."""
        conn = self._conn
        assert conn is not None
        conn.execute(_BEGIN)
        try:
            if fresh:
                self._next_prune_ms = self.clock_ms() + _PRUNE_EVERY_MS
            else:
                self._drop_foreign_triggers(conn)
                for ddl in SOLO_TABLES_DDL:
                    conn.execute(ddl)
            stored = self._meta("epoch")
            if stored > self.epoch:
                raise OwnershipLost(f"object {self.object_id} was claimed by epoch {stored} (ours: {self.epoch})")
            conn.execute("INSERT OR REPLACE INTO _solo_meta (key, value) VALUES ('epoch', ?)", (self.epoch,))
            if not fresh:
                self._prune_call_records(conn)
            self._migrate(conn)
        except StartFailed:  # a migration failed and was rolled back; what came before it is kept
            if conn.in_transaction:
                self._commit(conn)
            raise
        except BaseException:
            self._rollback(conn)
            raise
        self._commit(conn)

    def _drop_foreign_triggers(self, conn: sqlite3.Connection) -> None:
        """solo creates no trigger on its own tables; one there came from outside (a state imported
        before imports were checked): drop it before any of solo's writes could fire it."""
        found = conn.execute(
            "SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger' AND substr(tbl_name, 1, 6) = '_solo_'"
        ).fetchall()
        for name, table in found:
            log.warning("%s: dropping trigger %r on %s: solo's tables carry no triggers", self.ref, name, table)
            conn.execute(f'DROP TRIGGER "{name.replace(chr(34), chr(34) * 2)}"')

    def _commit(self, conn: sqlite3.Connection) -> None:
        """COMMIT, then ship the commit: nothing of it may be visible before this returns."""
        try:
            self._solo_sql(_COMMIT)
        except BaseException as exc:
            self._rollback(conn)
            if self.shared is not None:
                self.shared.abort()
            if out_of_space(exc):
                raise self._disk_full(exc) from exc
            raise
        if self.shipper is None:
            self.alarms.dirty.clear()  # a local-only instance has no shared index
        elif self.shipper.deferred:  # while hydrating: alarms and shared writes wait for the one shipment
            self.shipper.after_commit(conn)
        else:
            traces, self._shipping = self._shipping, []
            schema_version = self._schema_to_ship
            with self._tracing.ship(traces):
                self.shipper.after_commit(
                    conn, self._index_writes(), self._take_shared(), schema_version=schema_version
                )
            self._schema_to_ship = None
            if schema_version is not None:  # this shipment carried hydrate's commits too
                self._announce_all_alarms()

    def _disk_full(self, exc: BaseException) -> DiskFull:
        return DiskFull(f"no room left for {self.ref}'s file in this worker's data directory ({exc})")

    def _take_shared(self) -> Connection | None:
        return self.shared.take() if self.shared is not None else None

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            conn.execute(_ROLLBACK)

    def _context(self) -> ObjectContext:
        assert self._conn is not None
        return ObjectContext(
            object_id=self.object_id,
            class_name=self.cls.__name__,
            name=self.name,
            sql=SqlHandle(self._conn, self._guard),
            storage=Storage(self._conn, self.alarms),
            clock_ms=self.clock_ms,
            objects=self._directory,
            alarms=self.alarms,
            shared=self.shared if self.shared is not None else NoSharedDatabase(),
            websockets=WebSockets(self.sockets),
        )

    def _solo_sql(self, sql: str, parameters: Sequence[Any] = ()) -> sqlite3.Cursor:
        """One of solo's own statements, through the connection's one cursor for them.

        Python 3.11's sqlite3 keeps a weak reference to every cursor a connection makes until 200 more
        are made (conn.execute makes one): a few per call, across thousands of open objects, were a
        large share of the objects the garbage collector scans and promotes."""
        assert self._statements is not None
        return self._statements.execute(sql, parameters)

    def _meta(self, key: str) -> int:
        row = self._solo_sql("SELECT value FROM _solo_meta WHERE key = ?", (key,)).fetchone()
        return 0 if row is None else int(row[0])

    def _check_epoch(self, conn: sqlite3.Connection) -> None:
        self._check_stored_epoch(self._meta("epoch"))

    def _check_stored_epoch(self, stored: int) -> None:
        if stored != self.epoch:
            raise OwnershipLost(f"object {self.object_id} now belongs to epoch {stored} (ours: {self.epoch})")

    def schema_version(self) -> int:
        assert self._conn is not None
        return self._meta("schema_version")

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Apply the pending migrations in the claim's transaction, each in a savepoint; raises
        StartFailed with the failed one rolled back (and the transaction still open)."""
        migrations = list(self.cls.migrations)
        version = self._meta("schema_version")
        if version > len(migrations):
            raise SchemaTooNew(
                f"{self.cls.__name__}/{self.name} has schema version {version};"
                f" this code knows {len(migrations)} migrations"
            )
        for number, migration in enumerate(migrations[version:], start=version + 1):
            self._solo_sql(_SAVEPOINT)
            try:
                with self._guard.running_user_code():  # a migration is user code: it may not end its transaction
                    if callable(migration):
                        migration(SqlHandle(conn, self._guard))
                    else:
                        for statement in split_statements(migration):
                            self._guard.user_sql(conn.execute, statement)
                conn.execute("INSERT OR REPLACE INTO _solo_meta (key, value) VALUES ('schema_version', ?)", (number,))
            except Exception as exc:
                if out_of_space(exc):  # the claim's whole transaction is rolled back
                    raise self._disk_full(exc) from exc
                if conn.in_transaction:  # (unless SQLite rolled it all back itself)
                    self._solo_sql(_ROLLBACK_TO_SAVEPOINT)
                    self._solo_sql(_RELEASE_SAVEPOINT)
                log.error("%s: migration %d failed %s", self.ref, number, self._about(), exc_info=exc)
                raise StartFailed(f"{self.cls.__name__} migration {number} failed: {self._told(exc)}") from exc
            self._solo_sql(_RELEASE_SAVEPOINT)

    def _transaction(self, body: Callable[[], object], *, what: str, scope: CallScope) -> None:
        """Run user code outside any call (on_start, on_stop) in a transaction of its own.

        Raises StartFailed (logged, rolled back) if it raised or ran past the time limit."""
        conn = self._conn
        assert conn is not None
        conn.execute(_BEGIN)
        try:
            self._check_epoch(conn)
            with self._user_code(what, scope) as running:
                body()
            if self._timer.expired(running):
                raise CallInterrupted
            self.sockets.take_pending()  # read back from the outbox at the end of hydrate
        except CallInterrupted:
            self.sockets.drop_pending()
            self._rollback(conn)
            if self.shared is not None:
                self.shared.abort()
            message = f"{self.ref}.{what} ran past the call time limit ({self._timer.limit_s:g} s)"
            log.warning("%s %s", message, self._about())
            raise StartFailed(message) from None
        except OwnershipLost:
            self._rollback(conn)
            raise
        except Exception as exc:
            self.sockets.drop_pending()
            self._rollback(conn)
            if self.shared is not None:
                self.shared.abort()
            if out_of_space(exc):
                raise self._disk_full(exc) from exc
            log.error("%s.%s failed %s", self.ref, what, self._about(), exc_info=exc)
            raise StartFailed(f"{self.cls.__name__}.{what} failed: {self._told(exc)}") from exc
        self._commit(conn)

    def _prune_call_records(self, conn: sqlite3.Connection) -> None:
        now = self.clock_ms()
        self._next_prune_ms = now + _PRUNE_EVERY_MS
        self._solo_sql("DELETE FROM _solo_calls WHERE finished_ms < ?", (now - self.call_retention_ms,))

    def state_bytes(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0


def _clip(message: str) -> str:
    """An error message short enough to record (a user's exception may carry any amount of text)."""
    if len(message) <= _MAX_MESSAGE_CHARS:
        return message
    return f"{message[:_MAX_MESSAGE_CHARS]}... ({len(message) - _MAX_MESSAGE_CHARS} more characters)"


def recorded_outcomes(path: Path) -> dict[str, Outcome]:
    """Every recorded outcome in an object's file (for tests and diagnostics), read from a copy."""
    with reading_copy(path) as conn:
        return {cid: Outcome.from_payload(p) for cid, p in conn.execute("SELECT call_id, payload FROM _solo_calls")}
