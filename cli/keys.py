"""`solo keys create | ls | revoke`: API keys, in the shared database at DATABASE_URL.

The default DATABASE_URL is the SQLite file `solo dev` (`make run`) uses, so under `make run`
these commands need no settings. A SQLite database without the keys table is migrated here
(as `solo dev` would); any other database must be migrated by `solo migrate` first.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import sqlalchemy as sa

from solo.objects.errors import InvalidKeySpec, KeyNotFound
from solo.objects.settings import Settings
from solo.objects.state.keys import SCOPES, ApiKey, KeyStore
from solo.objects.state.schema import api_keys_table, make_engine


def _engine(settings: Settings) -> sa.Engine:
    engine = make_engine(settings.database_url)
    if sa.inspect(engine).has_table(api_keys_table.name):
        return engine
    where = engine.url.render_as_string(hide_password=True)
    if engine.url.get_backend_name() != "sqlite":
        engine.dispose()
        raise SystemExit(f"solo: the shared database at {where} has no API keys table yet: run `solo migrate` first")
    from solo.objects.state.migrate import upgrade

    print(f"migrating the shared database at {where} (as `solo migrate` does)", file=sys.stderr)
    upgrade(settings.database_url, settings.object_modules)
    return engine


def _row(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "tenant": key.tenant,
        "scope": key.scope,
        "rate": str(key.rate) if key.rate else None,
        "label": key.label,
        "created": key.created_at.isoformat(timespec="seconds"),
        "revoked": key.revoked_at.isoformat(timespec="seconds") if key.revoked_at else None,
    }


def cmd_keys(args: argparse.Namespace) -> int:
    engine = _engine(Settings.from_env())
    try:
        store = KeyStore(engine)
        if args.action == "create":
            return _create(store, args)
        if args.action == "ls":
            return _list(store, args)
        return _revoke(store, args)
    finally:
        engine.dispose()


def _create(store: KeyStore, args: argparse.Namespace) -> int:
    try:
        new = store.create(args.tenant, args.scope, rate=args.rate, label=args.label)
    except InvalidKeySpec as exc:
        print(f"solo: {exc.message}", file=sys.stderr)
        return 2
    key = new.key
    rate = f", rate {key.rate}" if key.rate else ""
    label = f", label {key.label!r}" if key.label else ""
    print(f"created API key {key.id}: tenant {key.tenant}, scope {key.scope}{rate}{label}", file=sys.stderr)
    print(
        "the key follows on stdout, this once (solo keeps only a hash of it); send it as Authorization: Bearer <key>",
        file=sys.stderr,
    )
    print(new.token)  # all of stdout, so: export SOLO_API_KEY=$(solo keys create ...)
    return 0


def _list(store: KeyStore, args: argparse.Namespace) -> int:
    rows = [_row(key) for key in store.list()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    columns = ("id", "tenant", "scope", "rate", "label", "created", "revoked")
    cells = [[str(row[c] if row[c] is not None else "-") for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip())
    for r in cells:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())
    return 0


def _revoke(store: KeyStore, args: argparse.Namespace) -> int:
    before = store.get(args.key_id)
    try:
        key = store.revoke(args.key_id)
    except KeyNotFound as exc:
        print(f"solo: {exc.message}", file=sys.stderr)
        return 1
    assert key.revoked_at is not None
    when = key.revoked_at.isoformat(timespec="seconds")
    if before is not None and before.revoked_at is not None:
        print(f"API key {key.id} was already revoked at {when}")
    else:
        print(f"revoked API key {key.id} at {when}; every API process refuses it within a few seconds")
    return 0


def add_keys_command(sub: Any) -> None:
    p = sub.add_parser("keys", help="API keys: create, list, revoke (in the shared database at DATABASE_URL)")
    actions = p.add_subparsers(dest="action", required=True)
    a = actions.add_parser("create", help="create a key; prints it once, alone on the last line of stdout")
    a.add_argument("--tenant", required=True, help="the tenant the key acts for")
    a.add_argument("--scope", required=True, choices=SCOPES, help="call < admin < operator (see README: Security)")
    a.add_argument("--rate", help="most requests per time, shared by every API process: 100/s, 6/minute, 1000/5m")
    a.add_argument("--label", help="what the key is for, e.g. 'billing service'")
    a.set_defaults(func=cmd_keys)
    a = actions.add_parser("ls", help="every key: id, tenant, scope, rate, label, created, revoked (never the key)")
    a.add_argument("--json", action="store_true", help="print JSON")
    a.set_defaults(func=cmd_keys)
    a = actions.add_parser("revoke", help="revoke a key by its id; API processes refuse it within a few seconds")
    a.add_argument("key_id", metavar="KEY_ID")
    a.set_defaults(func=cmd_keys)
