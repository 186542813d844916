"""Settings, read once at start-up into a frozen object.

``Settings.from_env()`` is called by the process entry points (CLI, app
factories); tests build ``Settings.from_mapping({...})`` directly. Every
variable is listed in README.md.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from solo.objects.calls import DEFAULT_MAX_RESULT_BYTES, MAX_RECORDED_RESULT_BYTES
from solo.objects.errors import InvalidSettings
from solo.objects.naming import is_tenant

log = logging.getLogger(__name__)

# Variables an earlier version read, and what took their place: set, they are named in a warning.
RETIRED = {
    "SOLO_SCHEDULER_POLL_MS": "the scheduler sleeps until its next look and is woken for a nearer alarm;"
    " SOLO_SCHEDULER_MAX_SLEEP_MS bounds the sleep (ADR 0018)",
}

# environment variable -> (field name, parser)
_ENV: dict[str, tuple[str, Callable[[str], Any]]] = {
    "REDIS_URL": ("redis_url", str),
    "DATABASE_URL": ("database_url", str),
    "SOLO_DATA_DIR": ("data_dir", str),
    "SOLO_OBJECTS": ("object_modules", lambda v: tuple(m.strip() for m in v.split(",") if m.strip())),
    "SOLO_KEY_PREFIX": ("key_prefix", str),
    "SOLO_NAMESPACE": ("namespace", str),
    "SOLO_LEASE_TTL_MS": ("lease_ttl_ms", int),
    "SOLO_IDLE_EVICT_S": ("idle_evict_s", float),
    "SOLO_CALL_TIMEOUT_S": ("call_timeout_s", float),
    "SOLO_MAX_BODY_BYTES": ("max_body_bytes", int),
    "SOLO_MAX_IMPORT_BYTES": ("max_import_bytes", int),
    "SOLO_MAX_RESULT_BYTES": ("max_result_bytes", int),
    "SOLO_MAX_QUEUED_CALLS": ("max_queued_calls", int),
    "SOLO_CALL_RECORD_TTL_S": ("call_record_ttl_s", int),
    "SOLO_WORKER_THREADS": ("worker_threads", int),
    "SOLO_BATCH_SIZE": ("batch_size", int),
    "SOLO_MAX_OPEN_DATABASES": ("max_open_databases", int),
    "SOLO_DRAMATIQ_TIMEOUT_MS": ("dramatiq_timeout_ms", int),
    "SOLO_WORKER_ID": ("worker_id", str),
    "SOLO_SCHEDULER_IN_WORKERS": ("scheduler_in_workers", lambda v: _flag(v)),
    "SOLO_ALARM_HORIZON_S": ("alarm_horizon_s", float),
    "SOLO_ALARM_REFILL_S": ("alarm_refill_s", float),
    "SOLO_ALARM_REDELIVER_S": ("alarm_redeliver_s", float),
    "SOLO_SCHEDULER_MAX_SLEEP_MS": ("scheduler_max_sleep_ms", int),
    "SOLO_CALL_TIME_LIMIT_S": ("call_time_limit_s", float),
    "SOLO_POISON_AFTER": ("poison_after", int),
    "SOLO_DRAIN_TIMEOUT_S": ("drain_timeout_s", float),
    "SOLO_SQLITE_SOFT_HEAP_BYTES": ("sqlite_soft_heap_bytes", int),
    "SOLO_RETENTION_S": ("retention_s", float),
    "SOLO_COMPACT_INTERVAL_S": ("compact_interval_s", float),
    "SOLO_DEBUG": ("debug", lambda v: _flag(v)),
    "SOLO_LOG_LEVEL": ("log_level", lambda v: v.strip().upper()),
    "SOLO_LOG_FORMAT": ("log_format", lambda v: v.strip().lower()),
    "SOLO_ACCESS_LOG": ("access_log", lambda v: _flag(v)),
    "SOLO_METRICS_PORT": ("metrics_port", int),
    "SOLO_METRICS_HOST": ("metrics_host", str),
    "SOLO_URL": ("url", str),
    "SOLO_AUTH": ("auth", lambda v: v.strip().lower()),
    "SOLO_CONSOLE_SESSION_S": ("console_session_s", int),
    "SOLO_API_KEY": ("api_key", lambda v: v.strip()),
    "SOLO_TENANT": ("tenant", lambda v: v.strip()),
    "PORT": ("port", int),
}


AUTH_MODES = ("keys", "off")
LOG_FORMATS = ("text", "json")


def _flag(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected 1/0, true/false, yes/no or on/off")


def _default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class Settings:
    redis_url: str = "redis://127.0.0.1:6379/0"
    database_url: str = "sqlite:///var/solo.db"
    data_dir: str = "var/objects"
    object_modules: tuple[str, ...] = ("solo.examples",)
    key_prefix: str = "solo"
    namespace: str = "default"
    lease_ttl_ms: int = 2000
    idle_evict_s: float = 60.0
    call_timeout_s: float = 30.0
    max_body_bytes: int = 1024 * 1024
    max_import_bytes: int = 512 * 1024 * 1024  # below Postgres' 1 GiB bytea limit, with room
    # Largest result of a call, as compact UTF-8 JSON; past it the call fails with result_too_large
    # and changes nothing. At most what a call's record holds (objects/calls.py).
    max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES
    max_queued_calls: int = 1000  # per object, from outside callers: past it 429 mailbox_full
    call_record_ttl_s: int = 24 * 3600
    worker_threads: int = 16
    batch_size: int = 128
    # Each open object file takes two descriptors (the cap is lowered to what the open-file limit
    # holds, workers/process.py) and about 240 KiB; reopening a closed one costs its call about 0.2 ms of CPU.
    max_open_databases: int = 10_000
    dramatiq_timeout_ms: int = 100
    worker_id: str = field(default_factory=_default_worker_id)
    # Alarms (workers/scheduler.py): every worker also contends for the scheduler's lease
    # unless this is off (then run `solo scheduler` processes).
    scheduler_in_workers: bool = True
    alarm_horizon_s: float = 60.0  # alarms due within this are in Redis's time index
    alarm_refill_s: float = 5.0  # how often the scheduler re-reads the shared index
    alarm_redeliver_s: float = 30.0  # a dispatched fire not yet run is dispatched again after this
    # Longest the leading scheduler sleeps between looks at the time index when no announcement wakes
    # it (an alarm is due, or announced due sooner): bounds what a lost wake-up delays an alarm.
    scheduler_max_sleep_ms: int = 1000
    call_time_limit_s: float = 30.0  # user code (a method, handler, on_start) running longer is interrupted
    poison_after: int = 3  # a call whose worker died or hung this often while running it is not run again
    drain_timeout_s: float = 30.0  # SIGTERM: how long running batches may take to finish before the worker exits
    # SQLite's soft heap limit for a whole worker process (0: none): past it, SQLite gives back page
    # cache before it takes more memory. Process-wide in SQLite, so set by the worker, never by objects.
    sqlite_soft_heap_bytes: int = 256 * 1024 * 1024
    # Retention (objects/state/compactor.py): every state of an object within this window can be restored;
    # older log records, snapshots, activation records and tombstones are pruned, never an object's latest state.
    retention_s: float = 7 * 24 * 3600.0
    compact_interval_s: float = 3600.0  # how often the scheduler compacts (0: only `solo compact`)
    # Callers get the message of a method's unexpected exception, and of solo's own internal errors.
    # Off: they get the exception's type and an id, and the message and traceback go to the log only.
    debug: bool = False
    log_level: str = "INFO"
    log_format: str = "text"  # "json": one JSON object per line (cli/logs.py)
    access_log: bool = False  # the API logs one line per request (api/access_log.py)
    # Workers and schedulers serve their metrics here (workers/metrics_port.py); 0: not served.
    # The API serves its own at /metrics on its port.
    metrics_port: int = 0
    metrics_host: str = "127.0.0.1"
    url: str = "http://127.0.0.1:8000"  # the API, for the CLI's client commands
    port: int = 8000  # the port `solo api` and `solo dev` listen on unless --port says otherwise
    # "keys": every request needs an API key (api/auth.py); "off": every request acts as the operator of
    # tenant "default" (`solo dev` defaults to it, nothing else does).
    auth: str = "keys"
    # How long a console sign-in lasts (api/console/session.py); then the key is pasted again.
    console_session_s: int = 8 * 3600
    # The key the CLI's HTTP commands send (Authorization: Bearer). A secret: kept out of repr().
    api_key: str | None = field(default=None, repr=False)
    # The tenant the CLI acts in: sent as Solo-Tenant (an operator key's choice), and used by
    # `solo objects history`. None: the key's own tenant ("default" for history).
    tenant: str | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.lease_ttl_ms < 300:
            problems.append("SOLO_LEASE_TTL_MS must be at least 300")
        if self.max_queued_calls < 1:
            problems.append("SOLO_MAX_QUEUED_CALLS must be at least 1")
        if not 0 < self.max_import_bytes < 1024 * 1024 * 1024:
            problems.append("SOLO_MAX_IMPORT_BYTES must be positive and below 1 GiB (Postgres' bytea limit)")
        if not 0 < self.max_result_bytes <= MAX_RECORDED_RESULT_BYTES:
            most = f"at most {MAX_RECORDED_RESULT_BYTES} (what a call's record holds)"
            problems.append(f"SOLO_MAX_RESULT_BYTES must be positive and {most}")
        if self.batch_size < 1:
            problems.append("SOLO_BATCH_SIZE must be at least 1")
        if self.worker_threads < 1:
            problems.append("SOLO_WORKER_THREADS must be at least 1")
        if self.max_open_databases < 16:
            problems.append("SOLO_MAX_OPEN_DATABASES must be at least 16")
        if self.alarm_refill_s <= 0 or self.alarm_horizon_s < 2 * self.alarm_refill_s:
            problems.append("SOLO_ALARM_REFILL_S must be positive and at most half of SOLO_ALARM_HORIZON_S")
        if self.alarm_redeliver_s <= 0:
            problems.append("SOLO_ALARM_REDELIVER_S must be positive")
        if not 10 <= self.scheduler_max_sleep_ms <= 60_000:
            problems.append("SOLO_SCHEDULER_MAX_SLEEP_MS must be between 10 and 60000")
        if "|" in self.worker_id:
            problems.append("SOLO_WORKER_ID must not contain '|'")
        if not 0 < self.call_time_limit_s <= 3600:
            problems.append("SOLO_CALL_TIME_LIMIT_S must be more than 0 and at most 3600")
        if self.drain_timeout_s <= 0:
            problems.append("SOLO_DRAIN_TIMEOUT_S must be positive")
        if self.sqlite_soft_heap_bytes < 0:
            problems.append("SOLO_SQLITE_SOFT_HEAP_BYTES must be 0 (no limit) or more")
        if self.retention_s < 60:
            problems.append("SOLO_RETENTION_S must be at least 60")
        if self.compact_interval_s < 0:
            problems.append("SOLO_COMPACT_INTERVAL_S must be 0 (only `solo compact`) or more")
        if self.poison_after < 1:
            problems.append("SOLO_POISON_AFTER must be at least 1")
        if self.log_level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            problems.append("SOLO_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        if self.log_format not in LOG_FORMATS:
            problems.append(f"SOLO_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}")
        if self.tenant is not None and not is_tenant(self.tenant):
            problems.append("SOLO_TENANT must be 1 to 64 letters, digits and '_.-', starting with a letter or digit")
        if self.auth not in AUTH_MODES:
            problems.append(f"SOLO_AUTH must be one of {', '.join(AUTH_MODES)}")
        if self.console_session_s < 60:
            problems.append("SOLO_CONSOLE_SESSION_S must be at least 60")
        if not 0 <= self.metrics_port < 65536:
            problems.append("SOLO_METRICS_PORT must be a TCP port number, or 0 for none")
        if not 0 < self.port < 65536:
            problems.append("PORT must be a TCP port number")
        if problems:
            raise InvalidSettings("; ".join(problems))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        for var, instead in RETIRED.items():
            if environ.get(var):
                log.warning("%s is no longer read: %s", var, instead)
        values: dict[str, Any] = {}
        for var, (name, parse) in _ENV.items():
            raw = environ.get(var)
            if raw is not None and raw != "":
                try:
                    values[name] = parse(raw)
                except ValueError as exc:
                    raise InvalidSettings(f"{var}={raw!r}: {exc}") from None
        return cls(**values)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Settings:
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise InvalidSettings(f"unknown settings: {sorted(unknown)}")
        values = dict(values)
        if isinstance(values.get("object_modules"), str):
            values["object_modules"] = tuple(values["object_modules"].split(","))
        return cls(**values)

    def with_changes(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @property
    def lease_renew_interval_s(self) -> float:
        return self.lease_ttl_ms / 3 / 1000


def environment_variables() -> list[str]:
    """The variables Settings.from_env reads, for docs and `solo --help`."""
    return list(_ENV)
