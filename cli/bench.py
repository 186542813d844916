"""`solo bench <scenario>`: run one benchmark scenario from bench/."""

from __future__ import annotations

import argparse


def add_bench_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="run a benchmark scenario (see bench/)")
    p.add_argument("scenario")
    p.add_argument("args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_bench)


def cmd_bench(args) -> int:
    import importlib
    import os
    import sys

    sys.path.insert(0, os.getcwd())  # bench/ is not installed: run from the repository's root
    try:
        module = importlib.import_module(f"bench.{args.scenario}")
    except ModuleNotFoundError as exc:
        message = f"no benchmark scenario {args.scenario!r} here ({exc}); run from the repository's root"
        raise SystemExit(message) from None
    return int(module.main(args.args) or 0)
