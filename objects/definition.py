"""The user's surface: DurableObject and @rpc.

A class is checked when it is defined; every problem is reported at once in
one DefinitionError, so a bad deploy fails at import, not at the first call.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from solo.objects.errors import DefinitionError, SoloError
from solo.objects.naming import check_class_name
from solo.objects.registry import registry
from solo.objects.signatures import MethodSpec, annotation_problem
from solo.objects.websockets import handler_problems

if TYPE_CHECKING:
    import datetime as dt

    from solo.objects.alarms import Alarms, Missed
    from solo.objects.context import ObjectContext
    from solo.objects.remote import ObjectDirectory
    from solo.objects.shared import SharedDatabase
    from solo.objects.sql import SqlHandle
    from solo.objects.storage import Storage
    from solo.objects.websockets import WebSockets

F = TypeVar("F", bound=Callable[..., Any])

_RPC_MARK = "__solo_rpc__"

# Names the base class owns; user code may not define @rpc methods with these names.
RESERVED_NAMES = frozenset(
    {
        "id",
        "name",
        "class_name",
        "sql",
        "storage",
        "shared",
        "ctx",
        "objects",
        "on_start",
        "on_stop",
        "alarm",
        "migrations",
        "call",
        "schedule",
        "cancel_schedule",
        "schedules",
        "websockets",
        # POST paths of the object's own HTTP routes (api/operations.py, api/app.py), which a call
        # of a method of that name would take; `export` is a GET, so an @rpc `export` stays callable
        "restore",
        "evict",
        "import",
    }
)


def rpc(function: F) -> F:
    """Mark a method as callable from outside the object (HTTP, clients, other objects)."""
    setattr(function, _RPC_MARK, True)
    return function


class DurableObject:
    """Base class of every durable object.

    Subclasses define ``migrations`` (ordered SQL strings or callables taking
    the SQL handle), an optional ``on_start()``, and ``@rpc`` methods. State
    lives in ``self.sql`` and ``self.storage``; plain attributes are in-memory
    only and disappear when the object is evicted.
    """

    migrations: typing.ClassVar[list[str | Callable[[Any], Any]]] = []
    __solo_methods__: typing.ClassVar[dict[str, MethodSpec]] = {}
    _solo_ctx: ObjectContext

    __solo_abstract__: typing.ClassVar[bool] = False

    def __init_subclass__(cls, abstract: bool = False, **kwargs: Any) -> None:
        """``class Base(DurableObject, abstract=True)``: a base class, checked like any other, never served.

        Its subclasses are served (unless they say ``abstract=True`` too)."""
        super().__init_subclass__(**kwargs)
        cls.__solo_abstract__ = abstract
        problems = _problems_of(cls)
        if problems:
            raise DefinitionError(cls.__name__, problems)
        cls.__solo_methods__ = _method_specs(cls)
        if not abstract:
            registry().add(cls)

    def on_start(self) -> None:
        """Runs after the object's state is loaded and migrated, before any call."""

    def on_stop(self) -> None:
        """Runs before a graceful eviction (idle, an operator's, a worker's drain), not after a crash.

        Best effort: a crash, a lost lease or a killed worker skips it. Its writes commit and ship
        like a call's (what it sends leaves after that); if it raises, the failure is logged and
        the object is evicted anyway, its writes rolled back."""

    # The context, exposed under short names.
    @property
    def ctx(self) -> ObjectContext:
        return self._solo_ctx

    @property
    def id(self) -> str:
        return self._solo_ctx.object_id

    @property
    def name(self) -> str:
        return self._solo_ctx.name

    @property
    def class_name(self) -> str:
        return self._solo_ctx.class_name

    @property
    def sql(self) -> SqlHandle:
        return self._solo_ctx.sql

    @property
    def storage(self) -> Storage:
        return self._solo_ctx.storage

    @property
    def shared(self) -> SharedDatabase:
        """The shared database: ``query(sql, **params)`` reads, ``execute(sql, **params)`` writes.
        A call's writes commit exactly when its own state does (objects/shared.py)."""
        shared = self._solo_ctx.shared
        if shared is None:
            raise SoloError("the shared database is not available here")
        return shared  # type: ignore[return-value]

    # -- named schedules (objects/alarms.py); the single alarm is self.storage.set_alarm ---

    def schedule(
        self,
        name: str,
        method: str,
        *,
        at: dt.datetime | int | float | None = None,
        every_s: float | None = None,
        cron: str | None = None,
        kwargs: dict[str, Any] | None = None,
        missed: Missed = "fire_once",
        grace_s: float = 60.0,
    ) -> dict[str, Any]:
        """Call ``self.<method>(**kwargs)`` at `at`, every `every_s` seconds (from `at` if given), or per
        `cron` (UTC; five fields, or six with seconds last). Replaces a schedule of the same name.
        `missed` says what happens to occurrences more than `grace_s` late: "fire_once" (run once
        for all of them), "catch_up" (run each) or "skip". Declaring a pending schedule again
        with the same definition keeps its timing, so on_start() may declare its schedules.
        Returns the schedule as schedules() lists it."""
        return self._solo_schedules().schedule(
            name, method, at=at, every_s=every_s, cron=cron, kwargs=kwargs, missed=missed, grace_s=grace_s
        )

    def cancel_schedule(self, name: str) -> bool:
        """Remove a schedule; False if there was none of that name."""
        return self._solo_schedules().cancel_schedule(name)

    def schedules(self) -> list[dict[str, Any]]:
        """This object's schedules, with their next time, retries and last error."""
        return self._solo_schedules().schedules()

    def _solo_schedules(self) -> Alarms:
        alarms = self._solo_ctx.alarms
        if alarms is None:
            raise SoloError("schedules are not available here")
        return alarms

    @property
    def websockets(self) -> WebSockets:
        """The object's open WebSockets: ``all(tag=None)``, ``count(tag=None)``, ``set_auto_response``
        (objects/websockets.py). A class accepts sockets when it defines ``web_socket_message``."""
        sockets = self._solo_ctx.websockets
        if sockets is None:
            raise SoloError("WebSockets are not available here")
        return sockets

    @property
    def objects(self) -> ObjectDirectory:
        """Other objects: ``self.objects.get("Class", "name").method(**kw)`` waits for the result;
        ``.send("method", **kw)`` delivers after this call commits (see objects/remote.py)."""
        directory = self._solo_ctx.objects
        if directory is None:
            raise SoloError("calls between objects are not available here")
        return directory


def _rpc_functions(cls: type) -> dict[str, Any]:
    """@rpc methods by name; an override of an @rpc method stays @rpc (and is checked as one)."""
    found: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        for attr, value in vars(klass).items():
            if callable(value) and (getattr(value, _RPC_MARK, False) or attr in found):
                found[attr] = value
    return found


def _problems_of(cls: type[DurableObject]) -> list[str]:
    problems: list[str] = []
    try:
        check_class_name(cls.__name__)
    except Exception as exc:  # InvalidName
        problems.append(str(exc))
    if "__init__" in vars(cls):
        problems.append("do not override __init__: set in-memory fields in on_start()")
    migrations = vars(cls).get("migrations", cls.migrations)
    if not isinstance(migrations, (list, tuple)):
        problems.append("migrations must be a list of SQL strings or callables")
    else:
        for i, m in enumerate(migrations):
            if not (isinstance(m, str) or callable(m)):
                problems.append(f"migrations[{i}] must be an SQL string or a callable, not {type(m).__name__}")
    for attr in RESERVED_NAMES - {"on_start", "on_stop", "alarm", "migrations"}:
        if attr in vars(cls):
            problems.append(f"{attr!r} is reserved by DurableObject and cannot be redefined")
    handler = vars(cls).get("alarm")
    if handler is not None:
        problems += _alarm_handler_problems(handler)
    problems += handler_problems(cls)
    for attr, function in _rpc_functions(cls).items():
        where = f"@rpc {attr}"
        if attr.startswith("_"):
            problems.append(f"{where}: rpc method names must not start with '_'")
        if attr in RESERVED_NAMES:
            problems.append(f"{where}: {attr!r} is a reserved name")
        if inspect.iscoroutinefunction(function):
            problems.append(f"{where}: must be a plain def; calls already run one at a time")
        try:
            hints = typing.get_type_hints(function)
        except Exception as exc:
            problems.append(f"{where}: annotations cannot be resolved ({exc})")
            continue
        params = list(inspect.signature(function).parameters.values())
        if not params or params[0].kind not in (params[0].POSITIONAL_ONLY, params[0].POSITIONAL_OR_KEYWORD):
            problems.append(f"{where}: first parameter must be self")
            continue
        for p in params[1:]:
            if p.kind in (p.POSITIONAL_ONLY, p.VAR_POSITIONAL):
                problems.append(f"{where}: parameter {p.name!r} must be passable by keyword")
            problem = annotation_problem(hints.get(p.name, inspect.Parameter.empty))
            if problem and p.kind is not p.VAR_KEYWORD:
                problems.append(f"{where}: parameter {p.name!r}: {problem}")
        problem = annotation_problem(hints.get("return", inspect.Parameter.empty))
        if problem:
            problems.append(f"{where}: return type: {problem}")
    if not cls.__solo_abstract__ and registry().conflicts(cls):
        other = registry().get(cls.__name__)
        problems.append(f"class name {cls.__name__!r} is already registered by {other.__module__}.{other.__qualname__}")
    return problems


def _alarm_handler_problems(handler: Any) -> list[str]:
    if not callable(handler):
        return ["alarm must be a method: def alarm(self, info)"]
    if inspect.iscoroutinefunction(handler):
        return ["alarm must be a plain def; fires already run one at a time"]
    try:
        inspect.signature(handler).bind(None, None)
    except TypeError:
        return ["alarm must take one argument besides self: def alarm(self, info)"]
    return []


def _method_specs(cls: type) -> dict[str, MethodSpec]:
    return {
        attr: MethodSpec.of(attr, function, typing.get_type_hints(function))
        for attr, function in _rpc_functions(cls).items()
    }
