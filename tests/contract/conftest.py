"""Fixtures of the contract tests that run objects on a state store (on a SQLite or a Postgres shared database)."""

from __future__ import annotations

import pytest

from solo.objects.naming import object_id
from solo.objects.runtime.instance import ObjectInstance
from solo.objects.state.catalog import Catalog
from solo.objects.state.store import StateStore


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
