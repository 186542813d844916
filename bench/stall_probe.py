"""Run a solo command with a thread that notes when this process could not run Python for a while.

    STALL_PROBE_FILE=/path python -m bench.stall_probe python -m solo worker

A daemon thread sleeps 1 ms at a time; a wake-up later than the threshold (20 ms) is
written to the file as one JSON line: the wall time it ended, how late it was, and the
CPU the process used meanwhile. Late with CPU used: another thread held the GIL (or
the process ran C code holding it); late with no CPU used: the process was not
scheduled, or every thread waited on I/O. Used by bench/stalls.py to find where a
call's time went during a stall.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import threading
import time

THRESHOLD_S = 0.020


def probe(path: str) -> None:
    with open(path, "a", buffering=1) as out:
        while True:
            began, cpu_began = time.monotonic(), time.process_time()
            time.sleep(0.001)
            late = time.monotonic() - began - 0.001
            if late > THRESHOLD_S:
                cpu = time.process_time() - cpu_began
                threads = threading.active_count()
                out.write(
                    json.dumps({"t": time.time(), "late_ms": late * 1000, "cpu_ms": cpu * 1000, "threads": threads})
                    + "\n"
                )


def main() -> None:
    path = os.environ["STALL_PROBE_FILE"]
    threading.Thread(target=probe, args=(path,), name="stall-probe", daemon=True).start()
    command = sys.argv[1:]
    module = command.index("-m") + 1
    sys.argv = [command[module], *command[module + 1 :]]
    runpy.run_module(command[module], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
