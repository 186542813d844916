"""Import memory: the API process's peak RSS while it takes a large `.sqlite` file.

    .venv/bin/python -m bench.import_memory [--size-mb 150] [--trials 1]

Builds a valid object file of `Bulky` (tests/objects.py) of about `--size-mb`
MB in a temporary folder (a worker's own database, migrated, then filled with
random blobs), starts the real system (API and one worker on Redis and a fresh
Postgres database), and PUTs the file to
`/v1/objects/Bulky/<name>/import` streamed from disk, as `solo objects import`
does. Meanwhile it samples the API process's resident set every 5 ms from
/proc; the kernel's own high-water mark (VmHWM) catches any peak between
samples. Then one call to the object shows that a worker hydrates the import.

Reported per trial: the API's RSS before, its peak, the peak's excess over
the start as a multiple of the file's size, and the RSS after.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx

from bench.common import System, print_table, write_result
from solo.api.client import Client
from solo.objects.calls import Call
from solo.objects.naming import new_call_id, object_id
from solo.objects.runtime.instance import ObjectInstance
from tests.objects import Bulky

MIB = 1024 * 1024
BLOB_BYTES = 64 * 1024

COLUMNS = [
    ("file_mb", "file MB", ".1f"),
    ("rss_before_mb", "API RSS before MB", ".1f"),
    ("rss_peak_mb", "API peak RSS MB", ".1f"),
    ("peak_over_file", "peak excess / file size", ".2f"),
    ("rss_after_mb", "API RSS after MB", ".1f"),
    ("import_s", "import s", ".1f"),
]


def object_file(folder: Path, size_mb: int) -> Path:
    """A Bulky object's database as a worker writes it, grown with random blobs to about `size_mb` MB."""
    name = f"source-{uuid.uuid4().hex[:8]}"
    path = folder / f"{name}.sqlite"
    instance = ObjectInstance(Bulky, object_id=object_id("bench", "Bulky", name), name=name, path=path, epoch=1)
    instance.hydrate()
    assert instance.run_batch([Call(new_call_id(), instance.object_id, "Bulky", name, "touch", {})]).outcomes[0].ok
    instance.close()
    conn = sqlite3.connect(path)
    rows = size_mb * MIB // BLOB_BYTES
    conn.executemany("INSERT INTO filler (data) VALUES (randomblob(?))", [(BLOB_BYTES,)] * rows)
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return path


def status_kib(pid: int, field: str) -> int:
    """A `/proc/<pid>/status` field in KiB (VmRSS: now; VmHWM: the peak since the process started)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise KeyError(field)


class RssSampler:
    """The highest VmRSS of a process seen between start() and stop(), sampled in a thread."""

    def __init__(self, pid: int, interval_s: float = 0.005) -> None:
        self.pid = pid
        self.interval_s = interval_s
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, status_kib(self.pid, "VmRSS"))
            time.sleep(self.interval_s)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak_kib


def measure(system: System, path: Path) -> dict:
    pid = system.cluster.api.pid
    size = path.stat().st_size
    client = Client(system.url, timeout_s=600)
    name = f"imported-{uuid.uuid4().hex[:8]}"
    before_kib = status_kib(pid, "VmRSS")
    sampler = RssSampler(pid)
    sampler.start()
    started = time.perf_counter()
    with open(path, "rb") as file:
        seq = client.object("Bulky", name).import_from(file, size=size)
    elapsed = time.perf_counter() - started
    sampled_kib = sampler.stop()
    peak_kib = max(sampled_kib, status_kib(pid, "VmHWM"))
    after_kib = status_kib(pid, "VmRSS")
    touched = client.object("Bulky", name).touch()  # a worker hydrates what was imported
    client.http.close()
    return {
        "file_mb": round(size / MIB, 1),
        "file_bytes": size,
        "seq": seq,
        "touch_result": touched,
        "rss_before_mb": round(before_kib / 1024, 1),
        "rss_peak_mb": round(peak_kib / 1024, 1),
        "rss_peak_sampled_mb": round(sampled_kib / 1024, 1),
        "peak_over_file": round((peak_kib - before_kib) * 1024 / size, 2),
        "rss_after_mb": round(after_kib / 1024, 1),
        "import_s": round(elapsed, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="solo bench import_memory", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mb", type=int, default=150)
    parser.add_argument("--trials", type=int, default=1, help="imports, each into a freshly started API process")
    args = parser.parse_args(argv)

    rows = []
    with tempfile.TemporaryDirectory(prefix="solo-bench-import-") as folder:
        path = object_file(Path(folder), args.size_mb)
        print(f"object file: {path.stat().st_size:,} bytes", flush=True)
        for _ in range(args.trials):
            with System("import_memory") as system:
                system.start()
                httpx.post(f"{system.url}/v1/objects/Counter/warm/increment").raise_for_status()
                rows.append(measure(system, path))
    title = "Import: the API process's memory"
    print_table(title, COLUMNS, rows)
    write_result(
        "import_memory",
        sys.argv[1:] if argv is None else argv,
        {
            "title": title,
            "columns": COLUMNS,
            "rows": rows,
            "notes": [
                "Peak: the higher of 5 ms samples of the API process's VmRSS during the import and the"
                " kernel's VmHWM for it (its high-water mark since it started).",
            ],
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
