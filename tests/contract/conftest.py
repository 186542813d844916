"""Fixtures of the contract tests: objects on a state store (on a SQLite or a Postgres shared database),
and the whole system in this process (`system`, `http`, `keys`).

A module changes the system's settings with a mark, e.g. `pytestmark = pytest.mark.system(auth="keys")`.
"""

from __future__ import annotations

import pytest

from solo.objects.naming import object_id
from solo.objects.runtime.instance import ObjectInstance
from solo.objects.state.catalog import Catalog
from solo.objects.state.keys import KeyStore
from solo.objects.state.store import StateStore
from solo.testing.inprocess import InProcessSystem


@pytest.fixture
def catalog(engine):
    return Catalog(engine)


@pytest.fixture
def store(engine):
    return StateStore(engine)


@pytest.fixture
def activate(catalog, store, tmp_path):
    """activate(cls, name, worker="w1"): take the object over as `worker` and hydrate it in that worker's dir."""
    made: list[ObjectInstance] = []

    def activate_(cls, name: str, worker: str = "w1") -> ObjectInstance:
        oid = object_id("test", cls.__name__, name)
        takeover = catalog.take_over(oid, "test", cls.__name__, name, worker, known_schema=len(cls.migrations))
        instance = ObjectInstance(
            cls,
            object_id=oid,
            name=name,
            path=tmp_path / worker / f"{oid}.sqlite",
            epoch=takeover.epoch,
            store=store,
            head_seq=takeover.head_seq,
        )
        instance.hydrate()
        made.append(instance)
        return instance

    yield activate_
    for instance in made:
        instance.close()


@pytest.fixture
def system(request, settings, redis_client, async_redis_client) -> InProcessSystem:
    """The API, workers and scheduler in this process, on the test's settings changed by `pytest.mark.system(...)`."""
    changes = {}
    for mark in reversed(list(request.node.iter_markers("system"))):  # the closest mark wins
        changes.update(mark.kwargs)
    return InProcessSystem(settings.with_changes(**changes), redis_client, async_redis_client)


@pytest.fixture
def http(system):
    """A client of the running system's API."""
    with system.running() as client:
        yield client


@pytest.fixture
def keys(system) -> KeyStore:
    """The system's API keys (for a system marked `auth="keys"`)."""
    return KeyStore(system.engine)
