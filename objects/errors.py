"""Errors of the object model. Every error solo raises derives from SoloError.

The API maps these classes to HTTP statuses (api/errors.py); nothing here
knows about HTTP beyond the optional status a user picks for UserError.
"""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from solo.objects.calls import Outcome


class SoloError(Exception):
    """Root of every error raised by solo itself."""

    code = "internal_error"

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message


class CallInterrupted(BaseException):
    """Raised inside user code when its call ran past SOLO_CALL_TIME_LIMIT_S (runtime/time_limit.py).

    A BaseException, like KeyboardInterrupt, so that user code's ``except Exception``
    does not swallow it: the call fails with ``time_limit_exceeded`` and its writes roll back.
    """


class InvalidSettings(SoloError, ValueError):
    """Raised at start-up when a setting (an environment variable) is malformed or out of range."""

    code = "invalid_settings"


class UnknownRevisions(SoloError):
    """The shared database was migrated by modules not served now: Alembic cannot place it (`solo migrate`,
    `solo dev` after a change of SOLO_OBJECTS)."""

    code = "unknown_revisions"


class InvalidKeySpec(SoloError, ValueError):
    """Raised when an API key cannot be created as asked: a tenant, scope, rate or label that is not acceptable."""

    code = "invalid_key_spec"


class KeyNotFound(SoloError):
    """Raised when an API key id names no key (revoking one that never existed)."""

    code = "key_not_found"


class DefinitionError(SoloError):
    """Raised at import when a DurableObject subclass is malformed; lists every problem."""

    code = "definition_error"

    def __init__(self, class_name: str, problems: list[str]) -> None:
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{class_name} is not a valid durable object:\n{lines}")
        self.problems = problems


class InvalidName(SoloError):
    """Raised when an object name or class name is not acceptable."""

    code = "invalid_name"


class UnknownClass(SoloError):
    """Raised when no registered class has the requested name; ``suggestions`` are the closest served names."""

    code = "unknown_class"

    def __init__(self, message: str, suggestions: list[str] | None = None) -> None:
        super().__init__(message)
        self.suggestions = suggestions or []


class UnknownMethod(SoloError):
    """Raised when the class has no @rpc method of the requested name; ``suggestions`` are its closest ones."""

    code = "unknown_method"

    def __init__(self, message: str, suggestions: list[str] | None = None) -> None:
        super().__init__(message)
        self.suggestions = suggestions or []


class InvalidArguments(SoloError):
    """Raised when call arguments are not JSON, unknown, missing, or of the wrong type."""

    code = "invalid_arguments"


class PayloadTooLarge(SoloError):
    """Raised when a request body exceeds the configured limit."""

    code = "payload_too_large"


class ObjectNotFound(SoloError):
    """Raised when metadata is asked for an object that never existed."""

    code = "object_not_found"


class StateConflict(SoloError):
    """Raised when an import would make an object anew while another operation makes it at the
    same moment (two imports into one new name): the other one won, this one changed nothing.
    Sent again, it replaces the winner's state like any import into an existing object."""

    code = "conflict"


class CallNotFound(SoloError):
    """Raised when a call id is unknown or its record has expired."""

    code = "call_not_found"


class CallTimeout(SoloError):
    """Raised when a caller stops waiting; the call itself still completes."""

    code = "timeout"

    def __init__(self, message: str, call_id: str) -> None:
        super().__init__(message)
        self.call_id = call_id


class UserError(SoloError):
    """Raised by user code to return a chosen status and message to the caller.

    The call's writes are rolled back like any other failure, but the caller
    sees ``status`` (default 400) and ``code`` instead of a 500, and ``details``
    (a JSON object, checked here) in the error body's ``details``.
    """

    code = "user_error"

    def __init__(
        self, message: str, status: int = 400, code: str = "user_error", *, details: dict[str, Any] | None = None
    ) -> None:
        if not 400 <= status <= 599:
            raise ValueError(f"UserError status must be 4xx or 5xx, not {status}")
        if details is not None:
            _check_details(details)
        super().__init__(message)
        self.status = status
        self.code = code
        self.details = details


def _check_details(details: object) -> None:
    """Details cross Redis and HTTP as JSON: refuse, where they are made, what JSON cannot carry."""
    if not isinstance(details, dict):
        raise TypeError(f"UserError details must be a dict, not {type(details).__name__}")
    try:
        json.dumps(details, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise TypeError(f"UserError details must be JSON-able: {exc}") from None


class SqlNotAllowed(SoloError, sqlite3.DatabaseError):
    """Raised when an object's own SQL asks for something objects/sql.py does not allow; it did not run.

    ``kind`` is what was refused ("statement", "function", "pragma", "table" or "virtual
    table module") and ``name`` which one (``fts3_tokenizer``, ``hard_heap_limit``...).
    A sqlite3.DatabaseError too, as SQLite's own "not authorized" is: code written
    against sqlite3 keeps catching it.
    """

    code = "sql_not_allowed"

    def __init__(self, kind: str, name: str, reason: str) -> None:
        super().__init__(f"{kind} {name} is not allowed in an object's SQL: {reason}")
        self.kind = kind
        self.name = name
        self.reason = reason


class SqlTooBig(SoloError, sqlite3.DataError):
    """Raised when an object's own SQL makes a value, or is a statement, larger than its limit.

    The limits are set on every object's connection (objects/sql.py): SQLite refuses to
    build the value, so its memory is never taken.
    """

    code = "sql_too_big"


class ResultTooLarge(SoloError):
    """A call's outcome (not raised) when its method returned more JSON than a result may be.

    The limit is SOLO_MAX_RESULT_BYTES, and a call's record must hold the result. The call
    fails as if the method had raised: its writes are rolled back, its sends dropped.
    """

    code = "result_too_large"


class SchemaTooNew(SoloError):
    """Raised when an object's schema has more migrations than this code knows.

    The worker refuses to open it and leaves it for a worker with newer code.
    """

    code = "schema_too_new"


class OwnershipLost(SoloError):
    """Raised when a worker finds that another owner has taken its object over.

    The worker drops the object at once; its unfinished calls are retried by the new owner.
    """

    code = "ownership_lost"


class StartFailed(SoloError):
    """Raised when an object's on_start() or a migration fails; no call runs on it."""

    code = "start_failed"


class RemoteCallError(SoloError):
    """A call to another object failed; ``code`` and ``message`` are the target's.

    Left uncaught, the calling method fails with the same code (and, for a
    UserError of the target, the same status), its message prefixed with the
    target and method.
    """

    code = "remote_call_failed"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        remote_type: str | None = None,
        target: str | None = None,
        method: str | None = None,
        call_id: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        if code:
            self.code = code
        self.status = status
        self.details = details  # the target's UserError details
        self.remote_type = remote_type
        self.target = target
        self.method = method
        self.call_id = call_id

    @classmethod
    def from_outcome(cls, target: str, method: str, outcome: Outcome) -> RemoteCallError:
        error = outcome.error or {}
        code = str(error.get("code") or RemoteCallError.code)
        kind = CycleError if code == CycleError.code else RemoteCallError
        return kind(
            f"{target}.{method} failed: {error.get('message', '')}",
            code=code,
            status=error.get("status"),
            remote_type=error.get("type"),
            target=target,
            method=method,
            call_id=outcome.call_id,
            details=error.get("details"),
        )


class CycleError(RemoteCallError):
    """A call would wait on an object that is already waiting for it (A -> B -> A): refused at once."""

    code = "call_cycle"


class RemoteCallTimeout(RemoteCallError):
    """No outcome within the timeout. The call itself stays queued and still runs."""

    code = "remote_call_timeout"


class RemoteCallUnavailable(RemoteCallError):
    """The call could not be delivered or its reply not awaited (Redis trouble, worker stopping).

    Transient, so never recorded as the caller's outcome: the caller's whole batch
    fails uncommitted and runs again later, making the same call under the same id.
    """

    code = "unavailable"


class AlarmNotFound(SoloError):
    """Raised when an operator cancels or fires an alarm or schedule the object does not have."""

    code = "alarm_not_found"


class InvalidSchedule(SoloError):
    """A schedule or alarm that cannot be set: bad time, interval, cron expression, method or kwargs."""

    code = "invalid_schedule"


class SharedValueRefused(SoloError):
    """Raised when the shared database refuses the values of an object's statement (self.shared).

    SQLAlchemy's DataError there: text with a NUL character (which PostgreSQL's text
    cannot hold), a number out of its column's range, text too long for its column. The
    values most often came from the call's caller; the statement did not run.
    """

    code = "shared_value_refused"


class ShippingFailed(SoloError):
    """Raised when a commit could not be made durable (shared database unreachable).

    The local copy is then ahead of the durable state, so the worker drops the
    object; its calls stay queued and run again from the durable state.
    """

    code = "unavailable"


class DiskFull(SoloError):
    """Raised when a worker's data directory has no room left for an object's file (SQLite's
    SQLITE_FULL, or ENOSPC from a write). Not the call's doing: the batch is abandoned
    uncommitted, the worker drops the object and another worker serves its queued calls."""

    code = "disk_full"


class InvalidImage(SoloError):
    """Raised when an imported file is not a sound SQLite database for this class."""

    code = "invalid_image"


class InvalidRow(InvalidImage):
    """Raised when a row of solo's own tables (``_solo_*``) in a database file is not one solo could
    have written for this object: the file is refused (import), or the row dropped (the worker)."""

    def __init__(self, table: str, problem: str) -> None:
        if len(problem) > 500:  # values from the file are quoted in it: keep the message readable
            problem = problem[:497] + "..."
        super().__init__(f"{table}: {problem}")
        self.table = table
        self.problem = problem


class WalFormatError(SoloError):
    """Raised when shipped frames or an image are not what SQLite would write."""

    code = "invalid_image"


class IncompleteLog(SoloError):
    """Raised when an object's log cannot rebuild the asked-for sequence: a record is missing.

    Seen when retention (or a delete) removed part of the log while it was being read.
    """

    code = "out_of_retention"


class OutOfRetention(SoloError):
    """Raised when a restore asks for a point the shared database no longer (or never) held."""

    code = "out_of_retention"


class MailboxFull(SoloError):
    """Raised when a caller enqueues into a mailbox holding SOLO_MAX_QUEUED_CALLS calls: nothing was queued."""

    code = "mailbox_full"


class IdempotencyKeyReused(SoloError):
    """Raised when an Idempotency-Key (its call id) comes again with another method or other arguments.

    Nothing was queued, and the first call's result is not returned for a different request.
    """

    code = "idempotency_key_reused"


class SocketLimitExceeded(SoloError, ValueError):
    """Raised in an object's code past a WebSocket limit: sockets per object, message size, tags, attachment."""

    code = "socket_limit"


class TooManySockets(SocketLimitExceeded):
    """Raised when a connection would pass an object's most open sockets (objects/websockets.py MAX_SOCKETS)."""

    code = "too_many_sockets"


class WebSocketsNotSupported(SoloError):
    """Raised when a WebSocket upgrade names a class without web_socket_message."""

    code = "websockets_not_supported"
