"""Run every benchmark scenario, one process each, then write bench/RESULTS.md.   (make bench)

    .venv/bin/python -m bench.all [--only throughput latency ...]

Scenarios run in the order below (bench/alarms.py too when it exists); a
failed scenario is reported and the others still run. The exit status is
non-zero if any failed. Chaos and the PostgreSQL outage are not part of it: `make chaos`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from bench import ROOT, report

# report.py's list in run order, minus the fault scenarios (make chaos runs them)
SCENARIOS = [name for name in report.SCENARIOS if name not in ("chaos", "postgres_outage")]


def available() -> list[str]:
    return [name for name in SCENARIOS if (ROOT / "bench" / f"{name}.py").exists()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="solo bench all", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", nargs="+", choices=SCENARIOS)
    args = parser.parse_args(argv)

    failed = []
    began = time.monotonic()
    for name in args.only or available():
        print(f"\n=== {name}", flush=True)
        started = time.monotonic()
        status = subprocess.run([sys.executable, "-m", f"bench.{name}"], cwd=ROOT).returncode
        print(f"=== {name}: {'ok' if status == 0 else f'FAILED ({status})'} in {time.monotonic() - started:.0f} s")
        if status != 0:
            failed.append(name)
    report.main([])
    print(f"\nall scenarios in {time.monotonic() - began:.0f} s" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
