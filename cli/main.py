"""solo — durable objects for Python.

solo dev                          the whole system, embedded services (make run)
solo api [--host H --port P]      the HTTP API (uvicorn)
solo worker                       a worker process (Dramatiq + object host)
solo migrate                      apply the shared database's migrations
solo call Counter/a increment by=2
solo objects info Counter/a
solo objects history Counter/a
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any

from objects.settings import Settings, environment_variables


def parse_kv(pairs: list[str]) -> dict[str, Any]:
    """key=value arguments; values are JSON when they parse as JSON, else strings."""
    kwargs: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"argument {pair!r} must look like key=value")
        try:
            kwargs[key] = json.loads(raw)
        except json.JSONDecodeError:
            kwargs[key] = raw
    return kwargs


def split_address(address: str) -> tuple[str, str]:
    class_name, sep, name = address.partition("/")
    if not sep or not class_name or not name:
        raise SystemExit(f"object address {address!r} must look like Class/name")
    return class_name, name


def _client(args):
    from api.client import Client

    return Client(args.url)


def cmd_call(args) -> int:
    from api.client import CallError

    class_name, name = split_address(args.object)
    with _client(args) as client:
        try:
            result = client.object(class_name, name).call(
                args.method, idempotency_key=args.idempotency_key, **parse_kv(args.args)
            )
        except CallError as exc:
            print(json.dumps({"error": exc.error}), file=sys.stderr)
            return 1
    print(json.dumps(result))
    return 0


def cmd_objects(args) -> int:
    class_name, name = split_address(args.object)
    if args.action == "info":
        from api.client import CallError

        with _client(args) as client:
            try:
                print(json.dumps(client.object(class_name, name).info(), indent=2))
            except CallError as exc:
                print(json.dumps({"error": exc.error}), file=sys.stderr)
                return 1
        return 0
    from objects.catalog import Catalog, make_engine
    from objects.naming import object_id

    settings = Settings.from_env()
    engine = make_engine(settings.database_url)
    try:
        history = Catalog(engine).history(object_id(settings.namespace, class_name, name))
    finally:
        engine.dispose()
    print(f"{'epoch':>6}  {'worker':<40} {'started':<32} stopped")
    for a in history:
        stopped = a.stopped_at.isoformat() if a.stopped_at else "-"
        print(f"{a.epoch:>6}  {a.worker_id:<40} {a.started_at.isoformat():<32} {stopped}")
    return 0


def cmd_api(args) -> int:
    import uvicorn

    from api.app import create_app

    # Keep-alive longer than common load balancers' idle timeouts, so the server
    # is never the side that closes a connection a client is about to reuse.
    uvicorn.run(
        create_app(Settings.from_env()),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=75,
    )
    return 0


def cmd_worker(args) -> int:
    from workers.process import run_worker

    settings = Settings.from_env()
    if args.threads:
        settings = settings.with_changes(worker_threads=args.threads)
    run_worker(settings)
    return 0


def cmd_migrate(args) -> int:
    from objects.migrate import upgrade

    upgrade(Settings.from_env().database_url)
    return 0


def cmd_dev(args) -> int:
    from .dev import run_dev

    return run_dev(args.host, args.port)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="solo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="environment: " + ", ".join(environment_variables()),
    )
    sub = parser.add_subparsers(dest="command", required=True)
    url = os.environ.get("SOLO_URL", "http://127.0.0.1:8000")

    for name in ("dev", "api"):
        p = sub.add_parser(name)
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        p.set_defaults(func=cmd_dev if name == "dev" else cmd_api)

    p = sub.add_parser("worker")
    p.add_argument("--threads", type=int, default=0, help="object threads (default SOLO_WORKER_THREADS)")
    p.set_defaults(func=cmd_worker)

    sub.add_parser("migrate").set_defaults(func=cmd_migrate)

    p = sub.add_parser("call", help="call a method: solo call Counter/a increment by=2")
    p.add_argument("object")
    p.add_argument("method")
    p.add_argument("args", nargs="*")
    p.add_argument("--idempotency-key")
    p.add_argument("--url", default=url)
    p.set_defaults(func=cmd_call)

    p = sub.add_parser("objects", help="inspect objects")
    p.add_argument("action", choices=["info", "history"])
    p.add_argument("object")
    p.add_argument("--url", default=url)
    p.set_defaults(func=cmd_objects)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=os.environ.get("SOLO_LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
