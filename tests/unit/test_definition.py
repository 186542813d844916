"""DurableObject definition: what a class may look like, and the process-wide registry.

Classes are built with ``type(...)`` under random names so that tests never
clash in the registry. No ``from __future__ import annotations`` here: the
annotations must be real objects so that locally defined types are seen as such.
"""

import uuid
from typing import Literal, Optional

import pytest

from solo import DurableObject, rpc
from solo.objects.errors import DefinitionError, UnknownClass, UnknownMethod
from solo.objects.registry import registry
from solo.objects.signatures import MethodSpec


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def define(name: str, members: dict, *, module: str = __name__, qualname: str | None = None) -> type:
    namespace = {"__module__": module, "__qualname__": qualname or name, **members}
    return type(name, (DurableObject,), namespace)


def test_a_valid_class_registers_and_exposes_its_rpc_methods():
    @rpc
    def greet(self, who: str, times: int = 1) -> str:
        """Say hello."""
        return ("hello " + who) * times

    @rpc
    def tags(self, values: list[str], meta: dict[str, int] | None = None, mode: Literal["a", "b"] = "a") -> list:
        return values

    name = unique("Greeter")
    cls = define(name, {"migrations": ["CREATE TABLE t (x)", lambda sql: None], "greet": greet, "tags": tags})

    assert registry().get(name) is cls
    assert name in registry().names()
    assert set(cls.__solo_methods__) == {"greet", "tags"}
    spec = registry().method(name, "greet")
    assert isinstance(spec, MethodSpec)
    assert [p.name for p in spec.parameters] == ["who", "times"]
    assert spec.doc == "Say hello."
    assert spec.describe()["parameters"]["who"] == {"type": "str", "schema": {"type": "string"}, "required": True}
    times = {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1}
    assert spec.describe()["parameters"]["times"] == {"type": "int", "schema": times, "required": False}


def test_only_rpc_methods_are_callable_through_the_registry():
    @rpc
    def public(self) -> int:
        return 1

    def helper(self) -> int:
        return 2

    name = unique("Mixed")
    define(name, {"public": public, "helper": helper})

    assert registry().method(name, "public").name == "public"
    with pytest.raises(UnknownMethod):
        registry().method(name, "helper")
    with pytest.raises(UnknownMethod):
        registry().method(name, "on_start")
    with pytest.raises(UnknownMethod):
        registry().method(name, "nothing_like_this")


def test_an_unknown_class_name_raises_unknown_class():
    with pytest.raises(UnknownClass):
        registry().get(unique("NeverDefined"))
    with pytest.raises(UnknownClass):
        registry().method(unique("NeverDefined"), "anything")


def test_rpc_methods_are_inherited_by_subclasses():
    @rpc
    def base_method(self) -> int:
        return 1

    @rpc
    def child_method(self, x: int) -> int:
        return x

    base = define(unique("Base"), {"base_method": base_method})
    child_name = unique("Child")
    namespace = {"__module__": __name__, "__qualname__": child_name, "child_method": child_method}
    child = type(child_name, (base,), namespace)

    assert set(child.__solo_methods__) == {"base_method", "child_method"}
    assert set(base.__solo_methods__) == {"base_method"}


def test_a_malformed_class_lists_every_problem_in_one_error():
    class Point:  # a custom class is not a JSON type
        pass

    def __init__(self):  # noqa: N807
        pass

    @rpc
    def takes_set(self, values: set[int]) -> int:
        return 0

    @rpc
    def takes_point(self, where: Point) -> int:
        return 0

    @rpc
    def int_keys(self, table: dict[int, str]) -> int:
        return 0

    @rpc
    def returns_tuple(self) -> tuple[int, int]:
        return (1, 2)

    @rpc
    def positional(self, x: int, /) -> int:
        return x

    @rpc
    def star_args(self, *values: int) -> int:
        return 0

    @rpc
    async def later(self) -> int:
        return 0

    @rpc
    def storage(self) -> int:
        return 0

    @rpc
    def id(self) -> str:
        return ""

    @rpc
    def _hidden(self) -> int:
        return 0

    name = unique("Broken")
    members = {
        "__init__": __init__,
        "migrations": ["CREATE TABLE t (x)", 42],
        "takes_set": takes_set,
        "takes_point": takes_point,
        "int_keys": int_keys,
        "returns_tuple": returns_tuple,
        "positional": positional,
        "star_args": star_args,
        "later": later,
        "storage": storage,
        "id": id,
        "_hidden": _hidden,
    }
    with pytest.raises(DefinitionError) as caught:
        define(name, members)

    error = caught.value
    message = str(error)
    expected = [
        "do not override __init__",
        "migrations[1] must be an SQL string or a callable, not int",
        "@rpc takes_set: parameter 'values': set[int] is not a JSON type",
        "@rpc takes_point: parameter 'where':",
        "@rpc int_keys: parameter 'table': dict[int, str]: JSON object keys are strings",
        "@rpc returns_tuple: return type: tuple[int, int] is not a JSON type",
        "@rpc positional: parameter 'x' must be passable by keyword",
        "@rpc star_args: parameter 'values' must be passable by keyword",
        "@rpc later: must be a plain def",
        "@rpc storage: 'storage' is a reserved name",
        "'storage' is reserved by DurableObject and cannot be redefined",
        "@rpc id: 'id' is a reserved name",
        "'id' is reserved by DurableObject and cannot be redefined",
        "@rpc _hidden: rpc method names must not start with '_'",
    ]
    missing = [text for text in expected if text not in message]
    assert not missing, f"not reported: {missing}\nerror was:\n{message}"
    assert any("Point" in p and "is not a JSON type" in p for p in error.problems if "takes_point" in p)
    assert message.startswith(f"{name} is not a valid durable object")
    assert error.code == "definition_error"
    # A rejected class is not registered.
    with pytest.raises(UnknownClass):
        registry().get(name)


def test_a_migrations_attribute_that_is_not_a_list_is_rejected():
    with pytest.raises(DefinitionError) as caught:
        define(unique("BadMigrations"), {"migrations": "CREATE TABLE t (x)"})
    assert "migrations must be a list of SQL strings or callables" in str(caught.value)


def test_json_able_annotations_of_every_kind_are_accepted():
    @rpc
    def everything(
        self,
        a: int,
        b: float,
        c: str,
        d: bool,
        e: None,
        f: list,
        g: dict,
        h: list[dict[str, list[int]]],
        i: Optional[int] = None,  # noqa: UP045 - the typing spelling must work too
        j: int | str | None = None,
        k: Literal["x", 1, True, None] = "x",
        untyped=None,
        **extra,
    ) -> dict[str, list[float | None]]:
        return {}

    name = unique("Everything")
    define(name, {"everything": everything})
    spec = registry().method(name, "everything")
    assert spec.accepts_any_keyword


def test_a_non_json_literal_value_is_rejected():
    @rpc
    def pick(self, choice: Literal[b"bytes"]) -> int:
        return 0

    with pytest.raises(DefinitionError) as caught:
        define(unique("BadLiteral"), {"pick": pick})
    assert "@rpc pick: parameter 'choice':" in str(caught.value)
    assert "non-JSON literal values" in str(caught.value)


def test_an_invalid_class_name_is_rejected():
    with pytest.raises(DefinitionError) as caught:
        type("x" * 200, (DurableObject,), {"__module__": __name__})
    assert "must be a Python identifier of at most 128 characters" in str(caught.value)


def test_a_second_class_with_the_same_name_from_elsewhere_is_rejected():
    name = unique("Twin")
    first = define(name, {}, module="tests.unit.somewhere")
    with pytest.raises(DefinitionError) as caught:
        define(name, {}, module="tests.unit.elsewhere")
    assert f"class name {name!r} is already registered by tests.unit.somewhere.{name}" in str(caught.value)
    assert registry().get(name) is first


def test_a_same_name_class_with_a_different_qualname_is_rejected():
    name = unique("Nested")
    first = define(name, {}, qualname=f"outer.{name}")
    with pytest.raises(DefinitionError):
        define(name, {}, qualname=f"other.{name}")
    assert registry().get(name) is first


def test_redefining_the_same_module_and_qualname_replaces_the_class():
    @rpc
    def old(self) -> int:
        return 1

    @rpc
    def new(self) -> int:
        return 2

    name = unique("Reloaded")
    first = define(name, {"old": old})
    second = define(name, {"new": new})

    assert second is not first
    assert registry().get(name) is second
    assert registry().method(name, "new").name == "new"
    with pytest.raises(UnknownMethod):
        registry().method(name, "old")


def test_an_override_of_an_rpc_method_stays_rpc_and_its_signature_is_checked():
    import uuid as _uuid

    from solo import DurableObject, rpc
    from solo.objects.errors import DefinitionError

    base = type(f"Base{_uuid.uuid4().hex[:8]}", (DurableObject,), {"ping": rpc(lambda self, n: n)})
    child = type(f"Child{_uuid.uuid4().hex[:8]}", (base,), {"ping": lambda self, n, extra=0: n + extra})
    assert "extra" in {p.name for p in child.__solo_methods__["ping"].parameters}

    def bad(self, items: set[int]) -> int:
        return 0

    try:
        type(f"Bad{_uuid.uuid4().hex[:8]}", (base,), {"ping": bad})
    except DefinitionError as exc:
        assert "set[int]" in str(exc)
    else:
        raise AssertionError("an override with a non-JSON parameter was accepted")


@pytest.mark.parametrize(
    "handler, problem",
    [
        (lambda self: None, "one argument besides self"),
        (lambda self, info, extra: None, "one argument besides self"),
        ("not a method", "must be a method"),
    ],
)
def test_an_alarm_handler_must_take_the_alarm_info(handler, problem):
    with pytest.raises(DefinitionError, match=problem):
        type(f"BadAlarm{uuid.uuid4().hex[:8]}", (DurableObject,), {"__module__": __name__, "alarm": handler})
