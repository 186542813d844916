"""`solo compact`: one compaction pass now, on the shared database at DATABASE_URL.

The scheduler runs the same pass every SOLO_COMPACT_INTERVAL_S; this one runs in
the command's own process, with the namespace (SOLO_NAMESPACE) and window
(SOLO_RETENTION_S) of its environment, after waiting for a pass that is already
running (on PostgreSQL). It prints what it pruned, as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from solo.objects.settings import Settings
from solo.objects.state.compactor import Compactor
from solo.objects.state.schema import make_engine


def cmd_compact(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    engine = make_engine(settings.database_url)
    try:
        report = Compactor(engine, settings.namespace, settings.retention_s).run(wait=True)
    finally:
        engine.dispose()
    print(json.dumps(report.as_dict(), indent=2 if args.pretty else None))
    if not report.complete:
        print("solo: the pass stopped before the end", file=sys.stderr)
        return 1
    return 0


def add_compact_command(sub: Any) -> None:
    p = sub.add_parser(
        "compact",
        help="prune the shared database's object history older than SOLO_RETENTION_S now (the scheduler does it"
        " every SOLO_COMPACT_INTERVAL_S)",
    )
    p.add_argument("--pretty", action="store_true", help="indent the JSON report")
    p.set_defaults(func=cmd_compact)
