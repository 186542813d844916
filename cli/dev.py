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

import fcntl
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

import httpx
import sqlalchemy as sa

from solo.cli.main import listening_url, warn_if_open
from solo.cli.served import ModulesBroken, Served, example_call, example_solo_call, inspect_modules
from solo.objects.settings import Settings
from solo.objects.state.migrate import upgrade

LOCK_FILE = "solo-dev.lock"


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


class AlreadyRunning(Exception):
    """Another `solo dev` holds this data directory, or something listens on the port."""


def hold_lock(directory: Path) -> TextIO:
    """Lock `directory` for this `solo dev`, until the returned file is closed (or the process ends)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_FILE
    lock = path.open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "?"
        lock.close()
        raise AlreadyRunning(f"another solo dev (pid {holder}) is running on {directory}/; stop it first") from None
    lock.seek(0)
    lock.truncate()
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    return lock


def lock_directory(settings: Settings) -> Path:
    """Where this `solo dev`'s durable state lives: the SQLite shared database's folder (./var by default),
    else the data directory."""
    url = sa.engine.make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).resolve().parent
    return Path(settings.data_dir).resolve()


def listen(host: str, port: int) -> socket.socket:
    """The API's listening socket, bound here so that a port in use stops `solo dev` before anything starts.
    The API processes inherit it (`solo api --fd`): a reload keeps it, and calls wait instead of failing."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=2048)  # SO_REUSEADDR, as uvicorn
    except OSError as exc:
        raise AlreadyRunning(f"cannot listen on {host}:{port}: {exc.strerror} (another solo dev? try --port)") from None


class Stack:
    """The API and worker processes of `solo dev`, started and stopped together."""

    def __init__(self, env: dict[str, str], sock: socket.socket, host: str, port: int) -> None:
        self.env, self.sock, self.host, self.port = env, sock, host, port
        self.children: list[subprocess.Popen] = []

    def start(self) -> None:
        solo = [sys.executable, "-m", "solo"]
        fd = self.sock.fileno()
        api = [*solo, "api", "--host", self.host, "--port", str(self.port), "--fd", str(fd)]
        # The preexec_fn runs between fork and exec while other threads of ours run (embedded Redis, the
        # watcher): it calls only prctl (resolved beforehand) and getppid, which take no lock they hold.
        preexec = _exit_with_parent()
        self.children = [
            subprocess.Popen(api, env=self.env, preexec_fn=preexec, pass_fds=(fd,)),
            subprocess.Popen([*solo, "worker"], env=self.env, preexec_fn=preexec),
        ]

    def running(self) -> bool:
        return all(c.poll() is None for c in self.children)

    def wait_ready(self, url: str, timeout_s: float = 120.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.running():
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        return False

    def stop(self) -> int:
        """SIGTERM (workers drain: finish their batches, release their objects), then wait; the worst status."""
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in self.children:
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        return max((c.returncode or 0) for c in self.children)


def _banner(url: str, settings: Settings, served: Served) -> str:
    names = served.names()
    lines = [f"solo is running at {url}  (Ctrl-C stops it)", ""]
    lines.append(f"serving {len(names)} class{'es' if len(names) != 1 else ''}: {', '.join(names) or '(none)'}")
    lines += [f"  from {', '.join(settings.object_modules)} (SOLO_OBJECTS); API page: {url}/docs", ""]
    call = example_call(url, served, bearer=settings.auth != "off")
    solo_call = example_solo_call(url, served, default_url=settings.url)
    if settings.auth == "off":
        lines.append(
            "auth is off: every request acts as the operator of tenant 'default' (SOLO_AUTH=keys requires keys)"
        )
        if call:
            lines += ["", f"  {call}", f"  {solo_call}"]
    else:
        lines.append("auth is on (SOLO_AUTH=keys): every request needs an API key. Create one, in this directory:")
        lines += ["", "  export SOLO_API_KEY=$(solo keys create --tenant default --scope operator)"]
        if call:
            lines += [f"  {call}", f"  {solo_call}"]
    return "\n" + "\n".join(lines) + "\n"


def _watch(paths: tuple[tuple[str, bool], ...], changed: threading.Event, stop: threading.Event) -> None:
    """Set `changed` whenever a Python file under `paths` changes (watchfiles: the OS's notifications)."""
    from watchfiles import PythonFilter, watch

    for recursive in (True, False):
        folders = [p for p, r in paths if r is recursive]
        if not folders:
            continue

        def run(folders: list[str] = folders, recursive: bool = recursive) -> None:
            for _ in watch(*folders, watch_filter=PythonFilter(), recursive=recursive, stop_event=stop):
                changed.set()

        threading.Thread(target=run, name="solo-dev-watch", daemon=True).start()


def dotenv_objects(path: Path) -> str | None:
    """SOLO_OBJECTS as a `.env` file sets it (`KEY=value` lines, as Procfile runners read them), if it does."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    for line in lines:
        key, sep, value = line.strip().removeprefix("export ").partition("=")
        if sep and key.strip() == "SOLO_OBJECTS":
            return value.split(" #")[0].strip().strip("\"'") or None
    return None


def run_dev(host: str, port: int, reload: bool = False) -> int:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # its lines among the children's
    env = dict(os.environ)
    # The user's modules are found from the current directory, as `python -m` would: here (migrations look
    # for their shared_migrations/) and in every process started (PYTHONPATH).
    cwd = os.getcwd()
    sys.path.insert(0, cwd)
    env["PYTHONPATH"] = os.pathsep.join([cwd, *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("DATABASE_URL", "sqlite:///var/solo.db")
    env.setdefault("SOLO_DATA_DIR", "var/objects")
    if "SOLO_OBJECTS" not in env and (from_dotenv := dotenv_objects(Path(cwd) / ".env")):
        env["SOLO_OBJECTS"] = from_dotenv  # `solo init`'s project names its modules there
        print(f"SOLO_OBJECTS={from_dotenv} (from ./.env)")
    if not env.get("SOLO_AUTH"):
        env["SOLO_AUTH"] = "off"  # development; `solo api` (production) defaults to keys
    env.setdefault("SOLO_DEBUG", "1")  # on one's own machine, a method's exception is shown to its caller
    settings = Settings.from_env(env)
    warn_if_open(settings, host)
    try:
        lock = hold_lock(lock_directory(settings))
        sock = listen(host, port)
    except AlreadyRunning as exc:
        print(f"solo: {exc}", file=sys.stderr)
        return 1
    try:
        served = inspect_modules(settings.object_modules, env)
    except ModulesBroken as exc:
        print(f"{exc}\nsolo: the served modules ({', '.join(settings.object_modules)}) do not import", file=sys.stderr)
        return 1
    server = None
    if not env.get("REDIS_URL"):
        redis_port = free_port()
        server = embedded_redis(redis_port)
        serve_in_background(server)
        env["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
        print(f"embedded Redis (fakeredis) on 127.0.0.1:{redis_port}")
    upgrade(settings.database_url, settings.object_modules)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stack = Stack(env, sock, host, port)
    stack.start()
    url = listening_url((host, port))
    try:
        if stack.wait_ready(url):
            print(_banner(url, settings, served))
        changed = threading.Event()
        if reload:
            _watch(served.watch, changed, stop)
            print(f"watching {', '.join(p for p, _ in served.watch)} for changes (--reload)\n")
        while not stop.is_set() and stack.running():
            if changed.wait(0.2):
                changed.clear()
                served = _reload(stack, settings, env, served, url)
    except KeyboardInterrupt:
        pass
    finally:
        code = stack.stop()
        lock.close()
        sock.close()
    return code


def _reload(stack: Stack, settings: Settings, env: dict[str, str], served: Served, url: str) -> Served:
    """Restart the processes on the changed code, if it imports; else say why and keep the running ones."""
    try:
        new = inspect_modules(settings.object_modules, env)
        upgrade(settings.database_url, settings.object_modules)  # a migration may have been added
    except ModulesBroken as exc:
        print(f"{exc}\nsolo: the change does not import; still serving the previous version\n", file=sys.stderr)
        return served
    except Exception as exc:  # a migration that fails: the running processes stay
        print(f"solo: migrating failed ({exc}); still serving the previous version\n", file=sys.stderr)
        return served
    print("solo: code changed; restarting the API and worker (objects' state is kept)")
    stack.stop()
    stack.start()
    if stack.wait_ready(url):
        print(f"solo: reloaded; serving {', '.join(new.names())}\n")
    return new
