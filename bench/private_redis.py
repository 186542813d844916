"""A redis-server of a run's own, on a free port and without persistence, that the run may kill and restart.

The chaos harness restarts Redis; doing that to the shared Redis would
disturb everything else using it, so it gets one of its own.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import redis

from solo.testing.cluster import free_port


class PrivateRedis:
    def __init__(self, directory: Path, host: str = "127.0.0.1") -> None:
        """`host`: the address it listens on (bench/partition.py: the hub of its network namespaces)."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (scripts/services.sh installs it)")
        self.port = free_port()
        self.url = f"redis://{host}:{self.port}/0"
        self.args = [binary, "--port", str(self.port), "--bind", host]
        self.args += ["--save", "", "--appendonly", "no", "--dir", str(directory)]
        if host != "127.0.0.1":  # it listens on that address only, where the run's own clients connect from
            self.args += ["--protected-mode", "no"]
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 10) -> None:
        self.process = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url, socket_timeout=1, socket_connect_timeout=1)
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                try:
                    if client.ping():
                        return
                except redis.RedisError:
                    if time.monotonic() > deadline:
                        self.kill()
                        raise RuntimeError(f"redis-server on port {self.port} did not start") from None
                    time.sleep(0.02)
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL: everything it held is gone (no persistence)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def __enter__(self) -> PrivateRedis:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.kill()
