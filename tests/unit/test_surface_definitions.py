"""Abstract base classes, on_stop() as a hook, a method's signature as text, and UserError's details.

Classes are built with ``type(...)`` under random names so that tests never clash in the registry.
"""

import uuid

import pytest

from solo import DurableObject, UserError, rpc
from solo.objects.calls import Outcome
from solo.objects.errors import DefinitionError, RemoteCallError, UnknownClass
from solo.objects.registry import registry


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def test_an_abstract_base_is_checked_but_not_served_and_its_subclasses_are():
    @rpc
    def ping(self) -> str:
        return "pong"

    base_name, child_name = unique("Base"), unique("Child")
    base = type(base_name, (DurableObject,), {"__module__": __name__, "ping": ping}, abstract=True)
    child = type(child_name, (base,), {"__module__": __name__})
    assert base_name not in registry().names()
    with pytest.raises(UnknownClass):
        registry().get(base_name)
    assert registry().get(child_name) is child and set(child.__solo_methods__) == {"ping"}
    assert child.__solo_abstract__ is False  # not inherited: a subclass is served unless it says so


def test_an_abstract_base_is_still_checked_when_it_is_defined():
    @rpc
    async def bad(self) -> None: ...

    with pytest.raises(DefinitionError, match="plain def"):
        type(unique("Base"), (DurableObject,), {"__module__": __name__, "bad": bad}, abstract=True)


def test_two_abstract_bases_may_share_a_name_as_they_are_never_served():
    name = unique("Mixin")
    type(name, (DurableObject,), {"__module__": __name__}, abstract=True)
    type(name, (DurableObject,), {"__module__": __name__ + ".other"}, abstract=True)
    assert name not in registry().names()


def test_on_stop_is_a_hook_not_an_rpc_name():
    @rpc
    def on_stop(self) -> None: ...

    with pytest.raises(DefinitionError, match="reserved"):
        type(unique("Stopper"), (DurableObject,), {"__module__": __name__, "on_stop": on_stop})


def test_a_signature_reads_as_python_writes_it():
    @rpc
    def greet(self, who: str, times: int = 1, ratio: float | None = None, **extra) -> list[str]: ...

    cls = type(unique("Signed"), (DurableObject,), {"__module__": __name__, "greet": greet})
    spec = cls.__solo_methods__["greet"]
    assert spec.signature() == "greet(who: str, times: int = 1, ratio: float | None = None, **kwargs) -> list[str]"


def test_user_error_details_must_be_a_json_object():
    assert UserError("no", details={"limit": 3, "fields": ["a"]}).details == {"limit": 3, "fields": ["a"]}
    assert UserError("no").details is None
    with pytest.raises(TypeError, match="JSON-able"):
        UserError("no", details={"when": object()})
    with pytest.raises(TypeError, match="dict"):
        UserError("no", details=["a"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="JSON-able"):
        UserError("no", details={"x": float("nan")})


def test_a_remote_callers_error_keeps_the_targets_details():
    outcome = Outcome.failure("c1", "over_limit", "too many", status=422, type_="UserError", details={"limit": 3})
    error = RemoteCallError.from_outcome("Quota/a", "take", outcome)
    assert error.details == {"limit": 3} and error.code == "over_limit" and error.status == 422


def test_the_wait_graph_finds_a_cycle_through_several_chains_and_only_then():
    import fakeredis

    from solo.objects.coordination.keys import Keys
    from solo.objects.coordination.wait_graph import WaitGraph

    graph = WaitGraph(fakeredis.FakeRedis(), Keys(unique("p")))
    # A waits on B and B on C, each for an outside caller of its own
    assert graph.wait("a", "X/a", "b", "X/b", 60_000) is None
    assert graph.wait("b", "X/b", "c", "X/c", 60_000) is None
    # D waiting on A closes nothing; C waiting on A closes A -> B -> C -> A
    assert graph.wait("d", "X/d", "a", "X/a", 60_000) is None
    assert graph.wait("c", "X/c", "a", "X/a", 60_000) == ["X/c", "X/a", "X/b", "X/c"]
    # The refused wait left no edge: once B's wait ends, C may wait on A
    graph.done("b")
    assert graph.wait("c", "X/c", "a", "X/a", 60_000) is None
