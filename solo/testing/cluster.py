"""Start a real solo (API and worker processes, as the Procfile does) on given services.

Used by solo's end-to-end tests and benchmarks: each process runs `python -m solo ...`
and writes its log to a file of its own in the given folder.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

SOLO = [sys.executable, "-m", "solo"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def open_files(pid: int, suffix: str) -> list[Path]:
    """The files process `pid` holds open whose names end with `suffix`, one per descriptor (Linux /proc)."""
    found = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except FileNotFoundError:  # closed since the listing
            continue
        if target.endswith(suffix):
            found.append(Path(target))
    return found


API_READY_LIMIT_S = 120


def process_env(
    *,
    redis_url: str,
    database_url: str,
    key_prefix: str,
    data_dir: Path,
    pythonpath: Path | None = None,
    auth: str = "off",
    **extra: str,
) -> dict[str, str]:
    """This process's environment minus any SOLO_ settings, pointed at the given services.

    `pythonpath`: a folder the processes import object modules from (SOLO_OBJECTS).
    `auth`: SOLO_AUTH; "off" unless a test or benchmark is about API keys (pass "keys", or
    start one API process with SOLO_AUTH="keys").
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOLO_")}
    env.update(
        REDIS_URL=redis_url,
        DATABASE_URL=database_url,
        SOLO_KEY_PREFIX=key_prefix,
        SOLO_DATA_DIR=str(data_dir),
        SOLO_LOG_LEVEL="WARNING",
        SOLO_AUTH=auth,
        **extra,
    )
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return env


def wait_until_ready(url: str, timeout_s: float, process: subprocess.Popen | None = None) -> bool:
    """Poll `url`/readyz until it answers 200 (True), `timeout_s` passes or `process` exits (False)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and (process is None or process.poll() is None):
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    return False


class Cluster:
    def __init__(self, env: dict[str, str], log_dir: Path, cwd: Path | None = None) -> None:
        self.env = env
        self.cwd = cwd
        self.log_dir = log_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api: subprocess.Popen | None = None  # the first API process, at self.url
        self.apis: list[subprocess.Popen] = []  # every API process, in start order
        self.workers: list[subprocess.Popen] = []
        self.worker_ids: list[str] = []  # SOLO_WORKER_ID of each worker, in start order

    def _spawn(self, args: list[str], name: str, wrap: Sequence[str] = (), **extra_env: str) -> subprocess.Popen:
        with open(self.log_dir / f"{name}.log", "ab") as log:  # the child keeps its own descriptor
            return subprocess.Popen(
                [*wrap, *SOLO, *args],
                cwd=self.cwd,
                env={**self.env, **extra_env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def start_api(
        self, *, ready_timeout_s: float = API_READY_LIMIT_S, wrap: Sequence[str] = (), **extra_env: str
    ) -> str:
        """Start an API process and wait until it is ready (at most `ready_timeout_s`); returns its URL.

        `wrap`: a command that runs it, as for start_worker.

        The first listens at self.url (its log is api.log); each further one on a port of its own
        (api1.log, ...), on the same Redis and database, as more `web` processes would.
        """
        index = len(self.apis)
        port = self.port if index == 0 else free_port()
        url = f"http://127.0.0.1:{port}"
        name = "api" if index == 0 else f"api{index}"
        process = self._spawn(["api", "--host", "127.0.0.1", "--port", str(port)], name, wrap, **extra_env)
        self.apis.append(process)
        if index == 0:
            self.api = process
        if not wait_until_ready(url, ready_timeout_s, process):
            raise RuntimeError(f"API did not become ready; see {self.log_dir / f'{name}.log'}")
        return url

    def start_worker(self, *, wrap: Sequence[str] = (), **extra_env: str) -> subprocess.Popen:
        """Start a worker process; `wrap`: a command that runs it (`ip netns exec NAME`: on another "host").

        The wrapping command must exec the worker, so that the process signalled is the worker."""
        index = len(self.workers)
        worker_id = f"w{index}-{os.urandom(3).hex()}"
        worker = self._spawn(["worker"], f"worker{index}", wrap, SOLO_WORKER_ID=worker_id, **extra_env)
        self.workers.append(worker)
        self.worker_ids.append(worker_id)
        return worker

    def worker_by_id(self, worker_id: str) -> subprocess.Popen | None:
        """The process of a worker named in a lease or the activation history."""
        for process, known in zip(self.workers, self.worker_ids):
            if known == worker_id:
                return process
        return None

    def live_workers(self) -> list[subprocess.Popen]:
        return [w for w in self.workers if w.poll() is None]

    def stop(self) -> None:
        procs = [p for p in [*self.apis, *self.workers] if p.poll() is None]
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def log(self, name: str) -> str:
        return (self.log_dir / f"{name}.log").read_text(errors="replace")
