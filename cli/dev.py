"""`solo dev`: the whole system on one machine with no services installed.

Without REDIS_URL it serves an embedded Redis-compatible server (fakeredis,
which runs Lua scripts through lupa); without DATABASE_URL the shared
database is a SQLite file under ./var. Then it applies migrations and runs
the API and one worker as child processes, like the Procfile does.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

from objects.migrate import upgrade
from objects.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_embedded_redis(port: int) -> None:
    from fakeredis import TcpFakeServer

    server = TcpFakeServer(("127.0.0.1", port), server_type="redis")
    threading.Thread(target=server.serve_forever, name="embedded-redis", daemon=True).start()


def run_dev(host: str, port: int) -> int:
    env = dict(os.environ)
    if not env.get("REDIS_URL"):
        redis_port = free_port()
        start_embedded_redis(redis_port)
        env["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
        print(f"embedded Redis (fakeredis) on 127.0.0.1:{redis_port}")
    env.setdefault("DATABASE_URL", "sqlite:///var/solo.db")
    env.setdefault("SOLO_DATA_DIR", "var/objects")
    settings = Settings.from_env(env)
    upgrade(settings.database_url)
    solo = [sys.executable, "-m", "cli.main"]
    children = [
        subprocess.Popen([*solo, "api", "--host", host, "--port", str(port)], env=env),
        subprocess.Popen([*solo, "worker"], env=env),
    ]
    url = f"http://{host}:{port}"
    print(f"\nsolo is running at {url}  (Ctrl-C stops it)\n")
    print(f"  curl -s -X POST {url}/v1/objects/Counter/hello/increment -d '{{\"by\": 2}}'\n")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.is_set() and all(c.poll() is None for c in children):
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
    return max((c.returncode or 0) for c in children)
