"""`solo dev`: the whole system on one machine with no services installed.

Without REDIS_URL it serves an embedded Redis-compatible server (fakeredis,
which runs Lua scripts through lupa); without DATABASE_URL the shared
database is a SQLite file under ./var. SOLO_DEBUG is on unless set. Then it applies migrations and runs
the API and one worker as child processes, like the Procfile does.

Unlike `solo api`, it does not authenticate requests unless SOLO_AUTH says so: without
SOLO_AUTH every request acts as the operator of tenant "default". With SOLO_AUTH=keys it
works as production does (create a key with `solo keys create`, same directory).
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

from solo.cli.main import warn_if_open
from solo.objects.settings import Settings
from solo.objects.state.migrate import upgrade


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def embedded_redis(port: int):
    """A fakeredis TCP server bound to 127.0.0.1:port; call serve_in_background() on it."""
    from fakeredis import TcpFakeServer

    server = TcpFakeServer(("127.0.0.1", port), server_type="redis")
    server.RequestHandlerClass = _whole_replies(_keep_open_on_error_replies(server.RequestHandlerClass))
    server.daemon_threads = True  # a connected client must not keep `solo dev` from exiting
    return server


def serve_in_background(server) -> None:
    threading.Thread(target=server.serve_forever, name="embedded-redis", daemon=True).start()


def start_embedded_redis(port: int) -> None:
    serve_in_background(embedded_redis(port))


def _keep_open_on_error_replies(handler_class: Any) -> type[Any]:
    """fakeredis 2.40's TCP handler closes the connection after any error reply.

    Its handler reads each reply through a redis-py connection, which raises
    error replies as exceptions; the handler writes the error and then drops
    the client. A real Redis keeps the connection, and clients rely on it: the
    first EVALSHA of a script gets NOSCRIPT, redis-py loads the script and
    retries on the same connection, which fakeredis had just closed ("Connection
    closed by server"). Returning the error as the reply value instead makes the
    handler write it like any other reply and go on serving the connection.
    """
    import redis

    class Handler(handler_class):
        def setup(self) -> None:
            super().setup()
            client = self.current_client
            read_response = client.read_response

            def read_response_keeping_errors(*args, **kwargs):
                try:
                    return read_response(*args, **kwargs)
                except redis.ResponseError as exc:
                    return exc  # encoded as an error reply; the connection stays open

            client.read_response = read_response_keeping_errors

    return Handler


class _WaitingWriter:
    """Writes a whole reply to a non-blocking socket, waiting while its send buffer is full."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        while view:
            try:
                sent = self._sock.send(view)
            except BlockingIOError:
                select.select([], [self._sock], [])
                continue
            view = view[sent:]
        return len(data)

    def flush(self) -> None:
        pass


def _whole_replies(handler_class: Any) -> type[Any]:
    """fakeredis 2.40's TCP handler loses replies larger than the socket's send buffer.

    It makes its socket non-blocking (for its reads) and writes each reply with
    `sendall()`, which on a non-blocking socket gives up with BlockingIOError once the
    kernel's send buffer is full: past about 4 MiB on Linux. The handler then drops the
    connection, and the reply with it: a reply list's entry that BLPOP had already popped
    is gone, so the API never hears of a call's large result and answers 504 `timeout`
    after the call completed. Writing in pieces, waiting for room in between, delivers
    replies of any size, as a real Redis does.
    """

    class Handler(handler_class):
        def setup(self) -> None:
            super().setup()
            self.writer.writer = _WaitingWriter(self.connection)

    return Handler


def _exit_with_parent():
    """A preexec_fn: the child gets SIGTERM if `solo dev` dies, even by SIGKILL (Linux only)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def preexec() -> None:
        prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before prctl
            os._exit(1)

    return preexec


def run_dev(host: str, port: int) -> int:
    env = dict(os.environ)
    server = None
    if not env.get("REDIS_URL"):
        redis_port = free_port()
        server = embedded_redis(redis_port)  # listening; it serves once the children are started
        env["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
        print(f"embedded Redis (fakeredis) on 127.0.0.1:{redis_port}")
    env.setdefault("DATABASE_URL", "sqlite:///var/solo.db")
    env.setdefault("SOLO_DATA_DIR", "var/objects")
    if not env.get("SOLO_AUTH"):
        env["SOLO_AUTH"] = "off"  # development; `solo api` (production) defaults to keys
    env.setdefault("SOLO_DEBUG", "1")  # on one's own machine, a method's exception is shown to its caller
    settings = Settings.from_env(env)
    warn_if_open(settings, host)
    upgrade(settings.database_url, settings.object_modules)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # Children are forked before any thread of ours runs, so the preexec_fn is safe.
    preexec = _exit_with_parent()
    solo = [sys.executable, "-m", "solo"]
    children = [
        subprocess.Popen([*solo, "api", "--host", host, "--port", str(port)], env=env, preexec_fn=preexec),
        subprocess.Popen([*solo, "worker"], env=env, preexec_fn=preexec),
    ]
    if server is not None:
        serve_in_background(server)
    url = f"http://{host}:{port}"
    print(f"\nsolo is running at {url}  (Ctrl-C stops it)\n")
    if settings.auth == "off":
        print("auth is off: every request acts as the operator of tenant 'default' (SOLO_AUTH=keys requires keys)\n")
        print(f"  curl -s -X POST {url}/v1/objects/Counter/hello/increment -d '{{\"by\": 2}}'\n")
    else:
        print("auth is on (SOLO_AUTH=keys): every request needs an API key. Create one, in this directory:\n")
        print("  export SOLO_API_KEY=$(solo keys create --tenant default --scope operator)")
        print(
            f"  curl -s -X POST {url}/v1/objects/Counter/hello/increment -d '{{\"by\": 2}}'"
            ' -H "Authorization: Bearer $SOLO_API_KEY"\n'
        )
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
            child.wait()
    return max((c.returncode or 0) for c in children)
