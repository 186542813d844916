"""LocalSystem: a whole solo inside the test process, for testing one's own objects.

    from solo.testing import LocalSystem

    def test_ledger():
        with LocalSystem(objects=[Ledger]) as system:
            ref = system.object("Ledger", "acct-1")
            assert ref.deposit(amount=5) == 5
            system.clock.advance(seconds=61)   # the alarms due by then fire, and have run on return
            system.restart()                   # every object let go: memory lost, state kept

It runs solo's own API, mailbox, object host, alarms, scheduler and state store, on
an in-memory Redis (fakeredis, which runs solo's Lua scripts) and a SQLite shared
database in a temporary directory: no service, network or subprocess. Calls go
through the API as HTTP requests (in process, through Starlette's TestClient), so a
failing call raises `solo.CallError` exactly as `solo.Client` raises it.

`AsyncLocalSystem` is the same system for asyncio tests: `async with`, and its
`object()` gives `solo.AsyncClient`'s references, whose calls are awaited.
"""

from __future__ import annotations

import builtins
import importlib.util
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import fakeredis
import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from solo.api.client import AsyncClient, AsyncObjectRef, Client, ObjectRef
from solo.objects.definition import DurableObject
from solo.objects.settings import Settings
from solo.objects.shared import SharedDatabase
from solo.objects.state.migrate import upgrade
from solo.testing.clock import ManualClock
from solo.testing.inprocess import InProcessSystem

Objects = str | type[DurableObject] | Iterable[str | type[DurableObject]]

BASE_URL = "http://solo.local"  # never resolved: requests go to the app in this process


def object_modules(objects: Objects) -> tuple[str, ...]:
    """The modules to serve: named ones, and those the given classes were defined in.

    A class registers itself when it is defined, so one from a module that cannot be imported
    by name (a script's `__main__`) is served too; only its module's shared migrations are not found.
    """
    given = [objects] if isinstance(objects, str | type) else list(objects)
    modules: list[str] = []
    for item in given:
        if isinstance(item, str):
            module = item
        elif isinstance(item, type) and issubclass(item, DurableObject):
            module = item.__module__
            if not _importable(module):
                continue
        else:
            raise TypeError(f"objects= takes DurableObject classes and module names, not {item!r}")
        if module not in modules:
            modules.append(module)
    return tuple(modules)


def _importable(module: str) -> bool:
    loaded = sys.modules.get(module)
    if loaded is not None:
        return getattr(loaded, "__spec__", None) is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


_MIGRATED: dict[tuple[str, ...], Path] = {}
_MIGRATED_DIR: tempfile.TemporaryDirectory[str] | None = None
_MIGRATED_LOCK = threading.Lock()


def migrated_database(modules: tuple[str, ...]) -> Path:
    """A shared database at the latest migrations of solo and of `modules`, made once per process
    (Alembic takes most of a second); each system starts from a copy of it."""
    global _MIGRATED_DIR
    with _MIGRATED_LOCK:
        if modules not in _MIGRATED:
            if _MIGRATED_DIR is None:
                _MIGRATED_DIR = tempfile.TemporaryDirectory(prefix="solo-migrated-")
            path = Path(_MIGRATED_DIR.name) / f"{len(_MIGRATED)}.db"
            upgrade(f"sqlite:///{path}", modules)
            _MIGRATED[modules] = path
        return _MIGRATED[modules]


class SharedTables:
    """`system.shared`: the shared database, for a test's assertions (and to seed it).

    `query` reads as an object's `self.shared.query` does; `execute` commits at once.
    `engine` is the SQLAlchemy engine, for anything else."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._reader = SharedDatabase(engine)

    def query(self, sql: str, /, **params: Any) -> list[dict[str, Any]]:
        return self._reader.query(sql, **params)

    def execute(self, sql: str, /, **params: Any) -> int:
        with self.engine.begin() as conn:
            return conn.execute(sa.text(sql), params).rowcount


class _LocalSystemBase:
    def __init__(
        self,
        objects: Objects,
        *,
        settings: Mapping[str, Any] | None = None,
        now_ms: int | None = None,
    ) -> None:
        """`objects`: DurableObject classes and module names to serve (as SOLO_OBJECTS names them).

        `settings`: Settings fields to change (e.g. {"call_time_limit_s": 1}); `now_ms`: where the
        clock starts (the wall clock's time by default). The shared database and the objects' files
        are in a temporary directory, removed on exit."""
        self.modules = object_modules(objects)
        self._changes = dict(settings or {})
        self.clock = ManualClock(now_ms)
        self.clock.drive(self._pass_time)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._system: InProcessSystem | None = None
        self.shared: SharedTables

    def _build(self) -> InProcessSystem:
        if self._system is not None:
            raise RuntimeError("this LocalSystem is already running")
        self._tmp = tempfile.TemporaryDirectory(prefix="solo-local-")
        try:
            system = self._system_in(Path(self._tmp.name))
        except BaseException:
            self._cleanup()
            raise
        self.shared = SharedTables(system.engine)
        self._system = system
        return system

    def _system_in(self, root: Path) -> InProcessSystem:
        database_url = f"sqlite:///{root / 'shared.db'}"
        shutil.copyfile(migrated_database(self.modules), root / "shared.db")
        settings = Settings.from_mapping(
            {
                "redis_url": "redis://in-process",  # unused: the clients below are given
                "database_url": database_url,
                "data_dir": str(root / "objects"),
                "object_modules": self.modules,
                "auth": "off",  # every request acts as the operator of tenant "default", as in `solo dev`
                "debug": True,  # a method's unexpected exception is named in its error, as in `solo dev`
                "worker_id": "local-1",
                **self._changes,
            }
        )
        server = fakeredis.FakeServer()
        return InProcessSystem(
            settings,
            fakeredis.FakeRedis(server=server),
            fakeredis.FakeAsyncRedis(server=server),
            clock_ms=self.clock,
        )

    def _pass_time(self, target_ms: int) -> None:
        if self._system is None:  # a clock moved outside the `with` block fires nothing
            self.clock.move_to(target_ms)
        else:
            self._system.pass_time(target_ms, self.clock.move_to)

    @property
    def settings(self) -> Settings:
        return self._running().settings

    def restart(self) -> None:
        """Restart the worker: every object is let go (its memory lost, its durable state kept)
        and hydrates afresh, from the shared database, at its next call or alarm."""
        self._running().restart_host()

    def settle(self) -> None:
        """Wait until every call and fire queued so far has run (`Prefer: respond-async` calls too)."""
        self._running().settle()

    def _running(self) -> InProcessSystem:
        if self._system is None:
            raise RuntimeError("the LocalSystem is not running: use it in a `with` block")
        return self._system

    def _cleanup(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        self._system = None


class LocalSystem(_LocalSystemBase):
    """A whole solo in this process; use it as a context manager (see the module's docstring)."""

    client: Client

    def __enter__(self) -> LocalSystem:
        system = self._build()
        self._serving = system.running()
        try:
            http = self._serving.__enter__()
        except BaseException:
            self._cleanup()
            raise
        http.base_url = BASE_URL
        # solo's Client, over the in-process transport: its errors and helpers are the real ones.
        self.client = Client(BASE_URL)
        self.client.http.close()
        self.client.http = http
        return self

    def __exit__(self, *exc: builtins.object) -> None:
        try:
            self._serving.__exit__(None, None, None)
        finally:
            self._cleanup()

    def object(self, class_name: str, name: str) -> ObjectRef:
        """A reference to one object, as `Client.object` gives: `ref.method(**args)` calls it."""
        self._running()
        return self.client.object(class_name, name)


class AsyncLocalSystem(_LocalSystemBase):
    """LocalSystem for asyncio tests: `async with AsyncLocalSystem(objects=[...]) as system`.

    The API runs in the test's event loop; `object()` gives `AsyncClient` references, whose
    calls are awaited. `clock.advance` and `restart` are plain calls: they wait for the objects,
    which run on the host's threads, not in the loop."""

    client: AsyncClient

    async def __aenter__(self) -> AsyncLocalSystem:
        system = self._build()
        system.start()
        self._lifespan = system.app.router.lifespan_context(system.app)
        try:
            await self._lifespan.__aenter__()
        except BaseException:
            system.stop()
            self._cleanup()
            raise
        self.client = AsyncClient(BASE_URL, transport=httpx.ASGITransport(app=system.app))
        return self

    async def __aexit__(self, *exc: builtins.object) -> None:
        system = self._running()
        try:
            await self.client.aclose()
            await self._lifespan.__aexit__(None, None, None)
        finally:
            system.stop()
            self._cleanup()

    def object(self, class_name: str, name: str) -> AsyncObjectRef:
        self._running()
        return self.client.object(class_name, name)
