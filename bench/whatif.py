"""What if: 100-object throughput and latency with experimental changes that solo does not have (yet).

    .venv/bin/python -m bench.whatif [--variants stock snapshot-floor snapshot-floor,one-statement]
                                     [--python /path/to/python] [--seconds 8]

Measures, for each variant on a fresh system (one worker, one API): calls/s
of 64 closed-loop clients over 100 warm counters with CPU ms per call by
role, then p50 / p99 in an open loop at half that rate and at 50 calls/s.

Variants name changes to the worker, applied at start-up by
bench/whatif_site/sitecustomize.py (see there): `stock` (none),
`snapshot-floor`, `one-statement`, or several joined by commas. With
`--python`, the API and workers run under that interpreter instead (e.g. a
virtualenv with the same dependencies plus uvloop, httptools and hiredis,
which uvicorn and redis-py pick up by themselves) and each variant runs under
both. Not part of `make bench`: it is the evidence for what would close the
gaps named in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid

from bench import cluster
from bench.cluster import ROOT
from bench.common import (
    CPU_COLUMNS,
    SHIPPING_COLUMNS,
    System,
    closed_loop_run,
    counter_paths,
    open_loop_run,
    print_table,
    warm,
    write_result,
)
from bench.loadgen import closed_loop

SITE = ROOT / "bench" / "whatif_site"

COLUMNS = [
    ("variant", "variant", ""),
    ("interpreter", "interpreter", ""),
    ("calls_per_s", "calls/s (64 clients)", ",.0f"),
    ("half_p50_ms", "half rate: p50 ms", ".2f"),
    ("half_p99_ms", "p99 ms", ".1f"),
    ("low_p50_ms", "50/s: p50 ms", ".2f"),
    ("low_p99_ms", "p99 ms", ".2f"),
    *SHIPPING_COLUMNS,
    ("cpu_total", "CPU ms/call: total", ".3f"),
    *CPU_COLUMNS[:5],
]


def measure(variant: str, seconds: float) -> dict:
    changes = "" if variant == "stock" else variant
    with System("whatif") as system:
        system.cluster.start_worker(PYTHONPATH=f"{SITE}:{ROOT}", BENCH_WHATIF=changes)
        system.cluster.start_api()
        paths = counter_paths(f"w-{uuid.uuid4().hex[:4]}", 100)
        warm(system.url, paths)
        asyncio.run(closed_loop(system.url, paths, 64, 2))
        peak = closed_loop_run(system, paths, 64, seconds)
        half = open_loop_run(system, paths, peak["calls_per_s"] / 2, seconds)
        low = open_loop_run(system, paths, 50, seconds)
    return {
        "variant": variant,
        **peak,
        "half_p50_ms": half["p50_ms"],
        "half_p99_ms": half["p99_ms"],
        "low_p50_ms": low["p50_ms"],
        "low_p99_ms": low["p99_ms"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="solo bench whatif", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--variants", nargs="+", default=["stock", "snapshot-floor", "snapshot-floor,one-statement"])
    parser.add_argument("--python", help="also run every variant with the processes under this interpreter")
    parser.add_argument("--seconds", type=float, default=8)
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)

    interpreters = [("this venv", sys.executable)] + ([("--python", args.python)] if args.python else [])
    rows = []
    for label, python in interpreters:
        cluster.SOLO = [python, "-m", "cli.main"]  # what Cluster spawns the API and workers with
        for variant in args.variants:
            rows.append({"interpreter": label, **measure(variant, args.seconds)})
    title = "What if: 100 objects, one worker, with experimental changes"
    print_table(title, COLUMNS, rows)
    write_result(
        "whatif",
        argv,
        {
            "title": title,
            "columns": COLUMNS,
            "rows": rows,
            "python": args.python,
            "notes": [
                "Experiments, not solo: `snapshot-floor` and `one-statement` are described in "
                "bench/whatif_site/sitecustomize.py. `--python` ran the processes under "
                f"{args.python or '(not used)'}.",
            ],
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
