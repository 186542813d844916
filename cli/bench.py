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

    module = importlib.import_module(f"bench.{args.scenario}")
    return int(module.main(args.args) or 0)
