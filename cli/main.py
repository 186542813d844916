"""solo — durable objects for Python.

solo init NAME                    a new project: one object class, its tests, a Procfile, a README
solo dev [--reload]               the whole system, embedded services (make run); SOLO_OBJECTS=todo: ./todo.py
solo api [--host H --port P]      the HTTP API (uvicorn)
solo worker                       a worker process (Dramatiq + object host)
solo migrate                      apply the shared database's migrations (solo's, and the apps')
solo call Counter/a increment by=2 | --json-args '{"by": 2}'
solo objects info Counter/a
solo objects history Counter/a
solo objects export Counter/a counter-a.sqlite
solo objects import Counter/b counter-a.sqlite
solo objects restore Counter/a --seq 12 | --at 2024-05-01T12:00:00Z
solo objects delete Counter/a [--yes]
solo compact                      prune object history older than SOLO_RETENTION_S now
solo objects ls [--class Counter] [--prefix a] [--limit 100] [--all]
solo objects evict Counter/a
solo workers ls                   live workers: version, objects held, threads busy (an operator's key)
solo alarms ls | purge --class C | cancel Counter/a [--schedule S] | fire-now Counter/a [--schedule S]
solo keys create --tenant acme --scope call [--rate 100/s] [--label "billing service"]
solo keys ls
solo keys revoke KEY_ID
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import os
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TextIO

import httpx
import sqlalchemy as sa

from solo.cli.logs import configure_logging
from solo.cli.tracing import configure_tracing
from solo.objects.errors import InvalidSettings, UnknownRevisions
from solo.objects.settings import Settings, environment_variables

log = logging.getLogger(__name__)


class CommandFailed(Exception):
    """A command cannot go on: `main` prints its message as one line on stderr and exits with `exit_code`."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def split_address(address: str) -> tuple[str, str]:
    class_name, sep, name = address.partition("/")
    if not sep or not class_name or not name:
        raise CommandFailed(f"object address {address!r} must look like Class/name", 2)
    return class_name, name


def _client(args):
    from solo.api.client import Client

    # SOLO_API_KEY, when set, goes out as the Bearer token (never on the command line, where `ps` shows it);
    # SOLO_TENANT as the tenant an operator key acts in.
    settings = Settings.from_env()
    return Client(args.url, api_key=settings.api_key, tenant=settings.tenant, timeout_s=getattr(args, "timeout", 60.0))


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


class ProgressBar:
    """A one-line progress bar (bytes done of total) redrawn in place on a terminal.

    Silent unless enabled; by default enabled when `stream` is a terminal.
    """

    def __init__(
        self,
        label: str,
        *,
        stream: TextIO | None = None,
        enabled: bool | None = None,
        width: int = 30,
        min_interval_s: float = 0.1,
    ) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.width = width
        self.min_interval_s = min_interval_s
        self._drawn_at = -1.0
        self._drawn = False
        self._last: tuple[int, int | None] = (0, None)

    def line(self, done: int, total: int | None) -> str:
        if total:
            fraction = min(done / total, 1.0)
            filled = int(fraction * self.width)
            bar = "#" * filled + "-" * (self.width - filled)
            return f"{self.label} [{bar}] {_size(done)} / {_size(total)} {fraction:4.0%}"
        return f"{self.label} {_size(done)}"

    def __call__(self, done: int, total: int | None) -> None:
        self._last = (done, total)
        if not self.enabled:
            return
        now = time.monotonic()
        finished = total is not None and done >= total
        if not finished and now - self._drawn_at < self.min_interval_s:
            return
        self._drawn_at = now
        self._draw(done, total)

    def _draw(self, done: int, total: int | None) -> None:
        self.stream.write("\r" + self.line(done, total) + "\x1b[K")  # erase what a longer line left
        self.stream.flush()
        self._drawn = True

    def finish(self) -> None:
        """Draw the final state and end the line (if a bar was drawn at all)."""
        if self.enabled and self._drawn:
            self._draw(*self._last)
            self.stream.write("\n")
            self.stream.flush()


def _print_error(exc) -> int:
    print(json.dumps({"error": exc.error}), file=sys.stderr)
    return 1


def _export(ref, args, bar: ProgressBar) -> dict[str, Any]:
    if args.file == "-":
        seq = ref.export_to(sys.stdout.buffer, progress=bar)
        sys.stdout.buffer.flush()
        return {"seq": seq}
    target = Path(args.file)
    # Into a temporary file next to the target, renamed at the end: a failed export leaves no partial file.
    fd, partial = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            seq = ref.export_to(file, progress=bar)
        os.replace(partial, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)
        raise
    return {"seq": seq, "file": str(target), "bytes": target.stat().st_size}


def _import(ref, args, bar: ProgressBar) -> dict[str, Any]:
    if args.file == "-":
        return {"seq": ref.import_from(sys.stdin.buffer, progress=bar)}
    try:
        file = open(args.file, "rb")
    except OSError as exc:
        raise CommandFailed(f"cannot read {args.file}: {exc.strerror}") from None
    with file:
        size = os.fstat(file.fileno()).st_size
        return {"seq": ref.import_from(file, size=size, progress=bar)}


def cmd_call(args) -> int:
    from solo.api.client import CallError
    from solo.cli.arguments import ArgumentError, method_parameters, parse_json_args, split_kv, typed_value

    class_name, name = split_address(args.object)
    try:
        kwargs = parse_json_args(args.json_args) if args.json_args is not None else {}
        pairs = split_kv(args.args)
    except ArgumentError as exc:
        raise CommandFailed(str(exc), 2) from None
    with _client(args) as client:
        if pairs:  # typed by the method's signature, as the server describes it
            parameters = method_parameters(client.http, class_name, args.method) or {}
            kwargs.update({key: typed_value(raw, parameters.get(key)) for key, raw in pairs})
        try:
            result = client.object(class_name, name).call(args.method, idempotency_key=args.idempotency_key, **kwargs)
        except CallError as exc:
            return _print_error(exc)
    print(json.dumps(result))
    return 0


def _confirmed(question: str, yes: bool) -> bool:
    """--yes, or the user's "y" at a terminal; without a terminal to ask on, the command refuses."""
    if yes:
        return True
    if not sys.stdin.isatty():
        raise CommandFailed(f"{question}: pass --yes to confirm (no terminal to ask on)", 2)
    answer = input(f"{question}? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def cmd_objects(args) -> int:
    class_name, name = split_address(args.object)
    from solo.api.client import CallError

    if args.action == "delete" and not _confirmed(f"delete {args.object} and all its state", args.yes):
        print("solo: not deleted", file=sys.stderr)
        return 1

    with _client(args) as client:
        ref = client.object(class_name, name)
        try:
            if args.action == "info":
                print(json.dumps(ref.info(), indent=2))
                return 0
            if args.action == "history":
                _print_history(ref.activations())
                return 0
            if args.action in ("export", "import"):
                bar = ProgressBar(f"{args.action} {args.object}", enabled=args.progress)
                try:
                    result = (_export if args.action == "export" else _import)(ref, args, bar)
                finally:
                    bar.finish()
            elif args.action == "restore":
                result = ref.restore(seq=args.seq, at=args.at)
            elif args.action == "purge":
                result = {"purged": ref.purge_mailbox()}
            elif args.action == "evict":
                result = {"evicting": ref.evict()}
            else:
                if not ref.delete():
                    print(
                        json.dumps({"error": {"code": "object_not_found", "message": f"{args.object} has no state"}}),
                        file=sys.stderr,
                    )
                    return 1
                result = {"deleted": True}
        except CallError as exc:
            return _print_error(exc)
    print(json.dumps(result), file=sys.stderr if args.action == "export" and args.file == "-" else sys.stdout)
    return 0


def cmd_objects_ls(args) -> int:
    from solo.api.client import CallError

    with _client(args) as client:
        try:
            if args.all:
                objects = list(client.all_objects(class_name=args.cls, prefix=args.prefix, page_size=args.limit))
                cursor = None
            else:
                page = client.objects(class_name=args.cls, prefix=args.prefix, limit=args.limit, cursor=args.cursor)
                objects, cursor = page["objects"], page["next_cursor"]
        except CallError as exc:
            return _print_error(exc)
    if args.json:
        print(json.dumps({"objects": objects, "next_cursor": cursor}, indent=2))
        return 0
    print(f"{'object':<40} {'active':<6} {'epoch':>6} {'state':>10} {'queued':>6} {'alarms':>7}  last active (UTC)")
    for o in objects:
        ref = f"{o['class']}/{o['name']}" + ("" if o["served"] else " (not served)")
        alarms = f"{o['alarms_pending']}/{o['alarms_failed']}"
        active = "yes" if o["active"] else "-"
        last = o["last_active_at"][:19].replace("T", " ")
        size = _size(o["state_bytes"])
        print(f"{ref:<40} {active:<6} {o['epoch']:>6} {size:>10} {o['queued_calls']:>6} {alarms:>7}  {last}")
    if cursor:
        print(
            f"more: solo objects ls --cursor {cursor}" + (f" --class {args.cls}" if args.cls else ""), file=sys.stderr
        )
    return 0


def _print_history(activations: list[dict[str, Any]]) -> None:
    print(f"{'epoch':>6}  {'worker':<40} {'started':<32} stopped")
    for a in activations:
        print(f"{a['epoch']:>6}  {a['worker'] or '-':<40} {a['started_at']:<32} {a['stopped_at'] or '-'}")


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def warn_if_open(settings: Settings, host: str) -> None:
    """Auth off on an address other machines reach: say so loudly (it is allowed, for a trusted network)."""
    if settings.auth == "off" and host not in LOOPBACK_HOSTS:
        print(
            f"solo: WARNING: SOLO_AUTH=off and listening on {host}: anyone who reaches this address acts as the"
            " operator. Set SOLO_AUTH=keys (the default of `solo api`) unless the network is trusted.",
            file=sys.stderr,
        )


def cmd_api(args) -> int:
    import uvicorn

    from solo.api.app import create_app
    from solo.api.http_protocol import http_protocol
    from solo.api.ws_protocol import LeanWebSocketProtocol
    from solo.objects.websockets import MAX_MESSAGE_BYTES

    settings = Settings.from_env()
    warn_if_open(settings, args.host)
    # Keep-alive longer than common load balancers' idle timeouts, so the server
    # is never the side that closes a connection a client is about to reuse.
    # log_config=None: uvicorn's lines go through solo's handler (and format); its own access
    # log stays off (SOLO_ACCESS_LOG is solo's, without secrets).
    config = uvicorn.Config(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_config=None,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=75,
        http=http_protocol(),  # httptools, writing each answer's head with its body (ADR 0020)
        ws_max_size=MAX_MESSAGE_BYTES,  # a larger WebSocket message closes its socket with 1009
        # Compression keeps zlib state per socket (about 60 KiB each, measured in bench/sockets.py):
        # too much for 10,000 idle sockets in 200 MiB, for little gain on short messages.
        ws_per_message_deflate=False,
        ws=LeanWebSocketProtocol,  # uvicorn's websockets-sansio, keeping less per idle socket
    )
    # Bound here so that the line below names the port really listened on; or inherited from `solo dev`.
    sock = socket.socket(fileno=args.fd) if args.fd is not None else config.bind_socket()
    log.info("solo api listening on %s", listening_url(sock.getsockname()))
    # What start-up made (modules, routes, the app) lives as long as the process: frozen, the
    # full collections that thousands of open sockets bring on skip it (a full collection
    # stops the event loop, every socket's heartbeat and write included, while it scans).
    gc.collect()
    gc.freeze()
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def listening_url(address: tuple) -> str:
    host, port = address[0], address[1]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def cmd_worker(args) -> int:
    from solo.workers.process import run_worker

    settings = Settings.from_env()
    if args.threads:
        settings = settings.with_changes(worker_threads=args.threads)
    run_worker(settings)
    return 0


def cmd_scheduler(args) -> int:
    from solo.workers.process import run_scheduler

    run_scheduler(Settings.from_env())
    return 0


def cmd_alarms(args) -> int:
    from solo.api.client import CallError

    with _client(args) as client:
        try:
            if args.action == "purge":
                print(json.dumps({"purged": client.purge_alarms(args.cls)}))
                return 0
            if args.action in ("cancel", "fire-now"):
                ref = client.object(*split_address(args.object))
                if args.action == "cancel":
                    print(json.dumps({"cancelled": ref.cancel_alarm(args.schedule)}))
                else:
                    print(json.dumps({"due_ms": ref.fire_alarm_now(args.schedule)}))
                return 0
            alarms = client.alarms(due_before=args.due_before, class_name=args.cls, state=args.state, limit=args.limit)
        except CallError as exc:
            return _print_error(exc)
    if args.json:
        print(json.dumps(alarms, indent=2))
        return 0
    print(f"{'object':<40} {'name':<24} {'state':<9} {'next (UTC)':<24} {'retries':>7}  last error")
    for a in alarms:
        ref = f"{a['object']['class']}/{a['object']['name']}"
        when = _utc(a["next_ms"]) if a["next_ms"] is not None else "-"
        name = "(alarm)" if a["kind"] == "alarm" else a["name"]
        error = (a["last_error"] or "")[:60]
        print(f"{ref:<40} {name:<24} {a['state']:<9} {when:<24} {a['retry_count']:>7}  {error}")
    return 0


def cmd_workers(args) -> int:
    from solo.api.client import CallError

    with _client(args) as client:
        try:
            workers = client.workers()
        except CallError as exc:
            return _print_error(exc)
    if args.json:
        print(json.dumps(workers, indent=2))
        return 0
    print(
        f"{'worker':<40} {'host':<20} {'pid':>7} {'version':<10} {'code':<16} {'objects':>7} {'busy':>7}  since (UTC)"
    )
    for w in workers:
        busy = f"{w['threads_busy']}/{w['threads']}"
        code = w["classes_digest"] or "-"
        print(
            f"{w['id']:<40} {w['host'][:20]:<20} {w['pid']:>7} {w['version'][:10]:<10} {code:<16}"
            f" {w['objects']:>7} {busy:>7}  {_utc(w['started_ms'])[:19]}"
        )
    return 0


def _utc(ms: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def cmd_migrate(args) -> int:
    from solo.objects.state.migrate import upgrade

    settings = Settings.from_env()
    upgrade(settings.database_url, settings.object_modules)
    return 0


def cmd_dev(args) -> int:
    from solo.cli.dev import run_dev

    return run_dev(args.host, args.port, reload=args.reload)


def solo_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("solo")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


class _DescribedSubcommands(argparse._SubParsersAction):
    def add_parser(self, name, **kwargs):
        kwargs.setdefault("description", kwargs.get("help"))
        return super().add_parser(name, **kwargs)


class CommandParser(argparse.ArgumentParser):
    """argparse's parser, whose subcommands' one-line help is also the description atop their own --help."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.register("action", "parsers", _DescribedSubcommands)


def build_parser(settings: Settings | None = None) -> CommandParser:
    settings = settings or Settings()
    parser = CommandParser(
        prog="solo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="environment: " + ", ".join(environment_variables()),
    )
    parser.add_argument("--version", action="version", version=f"solo {solo_version()}")
    sub: Any = parser.add_subparsers(dest="command", required=True)
    url = settings.url

    p = sub.add_parser(
        "dev", help="the whole system on this machine: embedded Redis, SQLite in ./var, API and a worker"
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=settings.port, help="default $PORT, else 8000")
    p.add_argument(
        "--reload",
        action="store_true",
        help="restart the API and worker when a served module's file changes (the objects' state is kept)",
    )
    p.set_defaults(func=cmd_dev)

    p = sub.add_parser(
        "api", help="the HTTP API (uvicorn), as production runs it (asks for API keys unless SOLO_AUTH=off)"
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=settings.port, help="default $PORT, else 8000")
    p.add_argument("--fd", type=int, help=argparse.SUPPRESS)  # a listening socket `solo dev` passes on
    p.set_defaults(func=cmd_api)

    p = sub.add_parser("worker", help="a worker process: runs objects' calls, alarms and (on standby) the scheduler")
    p.add_argument("--threads", type=int, default=0, help="object threads (default SOLO_WORKER_THREADS)")
    p.set_defaults(func=cmd_worker)

    sub.add_parser("scheduler", help="run a scheduler alone (workers also run one unless told not to)").set_defaults(
        func=cmd_scheduler
    )

    sub.add_parser(
        "migrate", help="apply the shared database's migrations: solo's, and the served modules'"
    ).set_defaults(func=cmd_migrate)

    p = sub.add_parser("alarms", help="alarms and schedules across all objects")
    alarm_actions = p.add_subparsers(dest="action", required=True)
    a = alarm_actions.add_parser("ls", help="list pending, retrying, failed and orphaned alarms and schedules")
    a.add_argument("--due-before", help="only those due by then: epoch ms or an ISO-8601 time")
    a.add_argument("--class", dest="cls", help="only objects of this class")
    a.add_argument("--state", choices=["pending", "retrying", "failed", "orphaned"])
    a.add_argument("--limit", type=int)
    a.add_argument("--json", action="store_true", help="print the API's JSON")
    a.add_argument("--url", default=url, help="the API (default $SOLO_URL)")
    a.set_defaults(func=cmd_alarms)
    a = alarm_actions.add_parser("purge", help="remove the orphaned alarms of a class no longer served")
    a.add_argument("--class", dest="cls", required=True, help="the class (one this deployment does not serve)")
    a.add_argument("--url", default=url, help="the API (default $SOLO_URL)")
    a.set_defaults(func=cmd_alarms)
    for verb, what in (
        ("cancel", "cancel an object's alarm (or --schedule NAME); orphaned ones leave the index"),
        ("fire-now", "make an object's alarm (or --schedule NAME) due now"),
    ):
        a = alarm_actions.add_parser(verb, help=what)
        a.add_argument("object", help="Class/name")
        a.add_argument("--schedule", default="_alarm", help="a schedule's name (default: the object's alarm)")
        a.add_argument("--url", default=url, help="the API (default $SOLO_URL)")
        a.set_defaults(func=cmd_alarms)

    p = sub.add_parser("workers", help="the live worker processes")
    worker_actions = p.add_subparsers(dest="action", required=True)
    a = worker_actions.add_parser("ls", help="version, code digest, objects held, threads busy, host/pid, since")
    a.add_argument("--json", action="store_true", help="print the API's JSON")
    a.add_argument("--url", default=url, help="the API (default $SOLO_URL)")
    a.set_defaults(func=cmd_workers)

    p = sub.add_parser("call", help="call a method: solo call Counter/a increment by=2")
    p.add_argument("object", help="Class/name")
    p.add_argument("method")
    p.add_argument(
        "args",
        nargs="*",
        metavar="key=value",
        help="keyword arguments, typed by the method's signature (title=42 is a string where it takes a str);"
        " a value is JSON where the parameter is not annotated",
    )
    p.add_argument("--json-args", metavar="JSON", help="the keyword arguments as one JSON object: '{\"by\": 2}'")
    p.add_argument("--idempotency-key", help="the same key on the same object is the same call: it runs once")
    p.add_argument("--url", default=url, help="the API (default $SOLO_URL)")
    p.set_defaults(func=cmd_call)

    p = sub.add_parser("objects", help="inspect and operate on objects")
    actions = p.add_subparsers(dest="action", required=True)

    def action(name: str, help: str) -> argparse.ArgumentParser:
        a = actions.add_parser(name, help=help)
        a.add_argument("object", help="Class/name")
        a.add_argument("--url", default=url, help="the API (default $SOLO_URL)")
        a.set_defaults(func=cmd_objects)
        return a

    action("info", "the object's metadata")
    action("history", "the object's activations: epoch, worker, started, stopped")
    for name, what in (
        ("export", "write the object's state to FILE as a plain .sqlite file ('-': stdout)"),
        ("import", "replace the object's state with the .sqlite file FILE ('-': stdin)"),
    ):
        a = action(name, what)
        a.add_argument("file", metavar="FILE")
        a.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the server (default 600)")
        a.add_argument(
            "--progress",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="show a progress bar on stderr (default: when stderr is a terminal)",
        )
    a = action("restore", "return the object to an earlier sequence or time within the retention window")
    point = a.add_mutually_exclusive_group(required=True)
    point.add_argument("--seq", type=int, help="a sequence number (see `solo objects info`: seq)")
    point.add_argument("--at", help="an ISO-8601 time, e.g. 2024-05-01T12:00:00Z (UTC when no offset)")
    a.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the server (default 600)")
    a = action("delete", "remove the object's state; the next call starts empty (asks first, unless --yes)")
    a.add_argument("--yes", "-y", action="store_true", help="do not ask (needed without a terminal)")
    action("purge", "fail the object's queued calls with `purged` (not a batch it is running now)")
    action("evict", "end the object's activation after its current batch; its next call hydrates it afresh")
    a = actions.add_parser("ls", help="list the tenant's objects, a page at a time (alarms: to fire/failed)")
    a.add_argument("--class", dest="cls", help="only objects of this class")
    a.add_argument("--prefix", help="only names starting with this")
    a.add_argument("--limit", type=int, help="objects per page (1 to 1000, default 100)")
    a.add_argument("--cursor", help="continue after a page (the `more:` line of the one before)")
    a.add_argument("--all", action="store_true", help="every page")
    a.add_argument("--json", action="store_true", help="print the API's JSON")
    a.add_argument("--url", default=url, help="the API (default $SOLO_URL)")
    a.set_defaults(func=cmd_objects_ls)

    from solo.cli.bench import add_bench_command
    from solo.cli.compact import add_compact_command
    from solo.cli.init import add_init_command
    from solo.cli.keys import add_keys_command

    add_compact_command(sub)
    add_init_command(sub)
    add_keys_command(sub)
    add_bench_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        settings = Settings.from_env()
    except InvalidSettings as exc:
        print(f"solo: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings)
    configure_tracing()
    args = build_parser(settings).parse_args(argv)
    try:
        code = args.func(args)
        sys.stdout.flush()  # here, so that a closed pipe shows up below and not at exit
        return code
    except CommandFailed as exc:
        print(f"solo: {exc}", file=sys.stderr)
        return exc.exit_code
    except UnknownRevisions as exc:
        print(f"solo: {exc}", file=sys.stderr)
        return 1
    except httpx.TransportError as exc:
        where = getattr(args, "url", None) or exc.request.url
        print(f"solo: cannot reach the API at {where}: {exc} (is it running? --url or SOLO_URL)", file=sys.stderr)
        return 1
    except sa.exc.OperationalError as exc:
        print(f"solo: the shared database failed: {str(exc.orig).strip().splitlines()[0]}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (`solo ... --json | head`): as a program killed by SIGPIPE, quietly.
        # Python flushes stdout once more at exit; point it at /dev/null so that flush cannot fail.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except KeyboardInterrupt:
        return 128 + signal.SIGINT


if __name__ == "__main__":
    sys.exit(main())
