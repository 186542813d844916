"""A PostgreSQL server of a run's own, on a free port, that the run may stop and start again.

The outage tests stop the shared database, and the partition test (bench/partition.py) needs
one listening on its network namespaces' hub address and trusting their subnet; doing either to
the machine's PostgreSQL would disturb everything else using it, so a run gets a cluster of its
own: `initdb` into a temporary directory, then `postgres -D <dir> -p <port> -k <dir>`,
listening on `host` (127.0.0.1 unless told).
PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user
(which owns the directory). fsync is off: the server is never crashed, only shut down,
and a fast shutdown writes everything out first.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from solo.testing.cluster import free_port

DATABASE = "solo"


def postgres_binaries() -> Path:
    """The directory of initdb and postgres (Debian keeps them out of PATH, by major version)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if not versions:
        raise RuntimeError("PostgreSQL's server programs are not installed (scripts/services.sh installs them)")
    return Path(versions[-1]).parent


class PrivatePostgres:
    """initdb'd on construction; `start()`, `stop()` (a fast shutdown: sessions are ended, work in
    progress rolled back) and `start()` again; `remove()` stops it and deletes its directory."""

    def __init__(self, host: str = "127.0.0.1", trusted: str = "127.0.0.1/32") -> None:
        """`trusted`: the network whose TCP clients may connect (without a password)."""
        self.host = host
        self.bin = postgres_binaries()
        self.user = "postgres" if os.geteuid() == 0 else None
        self.directory = Path(tempfile.mkdtemp(prefix="solo-private-pg-"))
        self.data = self.directory / "data"
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.directory, entry.pw_uid, entry.pw_gid)
        self.port = free_port()
        self.admin_url = f"postgresql://postgres@{host}:{self.port}/postgres"
        self.url = f"postgresql://postgres@{host}:{self.port}/{DATABASE}"
        self.process: subprocess.Popen | None = None
        self._run([str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync"])
        hba = f"local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all {trusted} trust\n"
        (self.data / "pg_hba.conf").write_text(hba)  # as root: readable by the server, which only reads it
        self._created = False

    def _run(self, args: list[str]) -> None:
        subprocess.run(args, check=True, capture_output=True, user=self.user, timeout=120)

    def start(self, timeout_s: float = 30) -> None:
        args = [str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port), "-k", str(self.directory)]
        args += ["-c", f"listen_addresses={self.host}", "-c", "fsync=off", "-c", "max_connections=300"]
        log = open(self.directory / "postgres.log", "ab")  # noqa: SIM115 - the server's, for as long as it runs
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, user=self.user)
        log.close()
        deadline = time.monotonic() + timeout_s
        while not self.accepting():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"postgres on port {self.port} did not start: {self.log_tail()}")
            time.sleep(0.05)
        if not self._created:
            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{DATABASE}"')
            self._created = True

    def accepting(self) -> bool:
        try:
            psycopg.connect(self.admin_url, connect_timeout=1).close()
        except psycopg.OperationalError:
            return False
        return True

    def stop(self) -> None:
        """A fast shutdown (SIGINT): every session is ended at once, open transactions roll back."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            self.process.wait(timeout=60)
        self.process = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        path = self.directory / "postgres.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> PrivatePostgres:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.remove()
