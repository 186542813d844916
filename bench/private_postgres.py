"""A PostgreSQL server of a run's own: a fresh cluster in a temporary directory, on a free port.

bench/partition.py needs one listening on the hub address of its network
namespaces, trusting the namespaces' subnet; the machine's shared server
must not be reconfigured for that, so the run makes its own with the
installed PostgreSQL programs (the `postgresql` package of
scripts/services.sh) and runs it as the `postgres` user, which PostgreSQL
requires. Everything, its files included, is removed on exit.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from solo.testing.cluster import free_port

USER = "postgres"


def postgres_bin() -> Path:
    """The newest installed PostgreSQL's programs (Debian puts them in /usr/lib/postgresql/<version>/bin)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3].split(".")[0]))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise RuntimeError("PostgreSQL's initdb is not installed (scripts/services.sh installs postgresql)")
    return Path(initdb).parent


class PrivatePostgres:
    """`with PrivatePostgres(host, trusted) as pg:` a server on `host`, trusting TCP clients from `trusted`."""

    def __init__(self, host: str = "127.0.0.1", trusted: str = "127.0.0.1/32", database: str = "solo") -> None:
        self.host, self.trusted, self.database = host, trusted, database
        self.port = free_port()
        self.url = f"postgresql+psycopg://{USER}@{host}:{self.port}/{database}"
        self.directory: Path | None = None
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 60) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="solo-postgres-"))
        shutil.chown(self.directory, USER, USER)
        data = self.directory / "data"
        bin_dir = postgres_bin()
        self._as_postgres([str(bin_dir / "initdb"), "-D", str(data), "-U", USER, "-A", "trust", "-E", "UTF8"])
        (data / "pg_hba.conf").write_text(
            f"local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all {self.trusted} trust\n"
        )
        args = [str(bin_dir / "postgres"), "-D", str(data), "-p", str(self.port)]
        args += ["-c", f"listen_addresses={self.host}", "-c", f"unix_socket_directories={self.directory}"]
        # The run is about the network, not the disk: no fsync on a machine shared with other work.
        args += ["-c", "fsync=off", "-c", "max_connections=300"]
        with open(self.directory / "postgres.log", "ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, user=USER, group=USER)
        admin = f"postgresql://{USER}@{self.host}:{self.port}/postgres"
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with psycopg.connect(admin, connect_timeout=2, autocommit=True) as conn:
                    conn.execute(f'CREATE DATABASE "{self.database}"')
                return
            except psycopg.OperationalError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"postgres did not start; see {self.directory / 'postgres.log'}") from None
                time.sleep(0.1)

    def _as_postgres(self, args: list[str]) -> None:
        subprocess.run(args, check=True, capture_output=True, timeout=120, user=USER, group=USER, cwd=self.directory)

    def stop(self) -> None:
        """Stop the server (fast shutdown, then SIGKILL) and delete its files."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # fast shutdown: clients are disconnected, not waited for
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def __enter__(self) -> PrivatePostgres:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
