"""Run a solo command with a thread that notes when this process could not run Python for a while.

    STALL_PROBE_FILE=/path python -m bench.stall_probe python -m solo worker

A daemon thread sleeps 1 ms at a time; a wake-up later than the threshold (20 ms) is
written to the file as one JSON line: the wall time it ended, how late it was, the
CPU the process used meanwhile, and how long the probe itself sat runnable in the
OS's run queue (/proc/thread-self/schedstat). Late while queued: the machine gave
the CPU to other processes. Late while not queued: the probe waited for the GIL,
held by threads running Python (the process's CPU shows it), or by a thread that did
not run: preempted by the OS (a busy machine again), or blocked in C holding it.
Used by bench/stalls.py to find where a call's time went.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import threading
import time

THRESHOLD_S = 0.020


def runqueue_s() -> float:
    """Time this thread has spent runnable but not running (the OS gave the CPU to others)."""
    with open("/proc/thread-self/schedstat") as f:
        return int(f.read().split()[1]) / 1e9


def probe(path: str) -> None:
    with open(path, "a", buffering=1) as out:
        while True:
            began, cpu_began, queued_began = time.monotonic(), time.process_time(), runqueue_s()
            time.sleep(0.001)
            late = time.monotonic() - began - 0.001
            if late > THRESHOLD_S:
                cpu = time.process_time() - cpu_began
                queued = runqueue_s() - queued_began
                threads = threading.active_count()
                out.write(
                    json.dumps(
                        {
                            "t": time.time(),
                            "late_ms": late * 1000,
                            "cpu_ms": cpu * 1000,
                            "runqueue_ms": queued * 1000,
                            "threads": threads,
                        }
                    )
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
