"""The shared ``alarms`` table: every object's alarms and schedules, for the scheduler and operators.

Rows are written only inside the shared-database transaction that ships the
commit which changed them (handed to ``StateStore.ship`` as an ``IndexUpdate``), so an alarm becomes visible
exactly when the state that set it is durable. The scheduler reads the rows
due soon from here after a restart of Redis or of itself; operators list them
(``GET /v1/alarms``, ``solo alarms ls``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from solo.objects.alarms import AlarmRow, kind_of, read_rows, state_of
from solo.objects.naming import DEFAULT_TENANT
from solo.objects.state.schema import alarms_table
from solo.objects.state.wal import plain_file

# "orphaned": of a class no live worker serves (nothing can run the object to fire it).
STATES = ("pending", "retrying", "failed", "orphaned")


Due = tuple[str, int | None]
"""(alarm name, next due ms or None): what the scheduler's time index must learn of a change."""


@dataclass(frozen=True)
class IndexUpdate:
    """Alarm rows of one object to write with a shipment: `rows` replace those names, `removed` go.

    A `SharedWrite` of the StateStore: written in the shipment's own transaction.
    """

    object_id: str
    namespace: str
    class_name: str
    object_name: str
    rows: list[AlarmRow] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    tenant: str = DEFAULT_TENANT

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.rows] + list(self.removed)

    @property
    def due(self) -> list[Due]:
        return [(r.name, r.next_ms) for r in self.rows] + [(n, None) for n in self.removed]

    def write(self, conn: Connection) -> None:
        a = alarms_table
        if self.names:
            conn.execute(a.delete().where(a.c.object_id == self.object_id, a.c.name.in_(self.names)))
        if self.rows:
            conn.execute(a.insert(), [_values(self, row) for row in self.rows])


@dataclass
class ReplaceObjectAlarms:
    """All of an object's alarm rows, replacing whatever the index held (import, restore; none: delete).

    A `SharedWrite` of the StateStore. After it was written, `due` tells the scheduler's time
    index what changed: every name the index held before, and every row now there.
    """

    object_id: str
    namespace: str
    class_name: str
    object_name: str
    rows: list[AlarmRow] = field(default_factory=list)
    previous: list[str] = field(default_factory=list)  # names the index held, read in the same transaction
    tenant: str = DEFAULT_TENANT

    @property
    def due(self) -> list[Due]:
        return [(n, None) for n in self.previous] + [(r.name, r.next_ms) for r in self.rows]

    def write(self, conn: Connection) -> None:
        a = alarms_table
        self.previous = list(conn.execute(sa.select(a.c.name).where(a.c.object_id == self.object_id)).scalars())
        conn.execute(a.delete().where(a.c.object_id == self.object_id))
        if self.rows:
            conn.execute(a.insert(), [_values(self, row) for row in self.rows])


def _values(update: IndexUpdate | ReplaceObjectAlarms, row: AlarmRow) -> dict[str, Any]:
    return {
        "object_id": update.object_id,
        "name": row.name,
        "namespace": update.namespace,
        "tenant": update.tenant,
        "class_name": update.class_name,
        "object_name": update.object_name,
        "method": row.method,
        "spec": row.recurrence.describe(),
        "scheduled_ms": row.scheduled_ms,
        "next_ms": row.next_ms,
        "retry_count": row.retry_count,
        "failures": row.failures,
        "last_error": row.last_error,
        "last_error_ms": row.last_error_ms,
        "last_fired_ms": row.last_fired_ms,
    }


def rows_of_image(image: bytes) -> list[AlarmRow]:
    """The alarm rows inside a database image (a restore re-indexes from it)."""
    if not image:
        return []
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("PRAGMA trusted_schema=OFF")
        conn.deserialize(plain_file(image))
        conn.execute("PRAGMA query_only=ON")
        return read_rows(conn)
    finally:
        conn.close()


@dataclass(frozen=True)
class IndexedAlarm:
    object_id: str
    name: str
    class_name: str
    object_name: str
    next_ms: int | None


class AlarmIndex:
    """Reads of one namespace's alarms (deployments sharing a database see only their own).

    The scheduler reads every tenant's; operators' listings name the tenant they may see.
    """

    def __init__(self, engine: Engine, namespace: str) -> None:
        self.engine = engine
        self.namespace = namespace

    def due_before(self, until_ms: int, limit: int = 10_000) -> list[IndexedAlarm]:
        """Pending rows due at or before `until_ms`, earliest first (the scheduler's refill)."""
        a = alarms_table
        query = (
            sa.select(a.c.object_id, a.c.name, a.c.class_name, a.c.object_name, a.c.next_ms)
            .where(a.c.namespace == self.namespace, a.c.next_ms.is_not(None), a.c.next_ms <= until_ms)
            .order_by(a.c.next_ms)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [IndexedAlarm(*row) for row in conn.execute(query)]

    def counts(self, object_ids: Iterable[str]) -> dict[str, tuple[int, int]]:
        """(still to fire, failed) alarms and schedules of each object that has any (one query)."""
        a = alarms_table
        ids = list(object_ids)
        if not ids:
            return {}
        failed = sa.case((a.c.next_ms.is_(None), 1), else_=0)
        query = (
            sa.select(a.c.object_id, sa.func.count(), sa.func.sum(failed))
            .where(a.c.object_id.in_(ids))
            .group_by(a.c.object_id)
        )
        with self.engine.connect() as conn:
            return {oid: (int(total) - int(bad or 0), int(bad or 0)) for oid, total, bad in conn.execute(query)}

    def listing(
        self,
        *,
        tenant: str | None = None,
        due_before: int | None = None,
        class_name: str | None = None,
        object_ids: Iterable[str] | None = None,
        state: str | None = None,
        limit: int = 1000,
        served: Collection[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Rows for operators: pending and retrying ones by due time, then failed ones.

        With `served` (the classes live workers serve: api/workers.py), rows of other classes are `orphaned`,
        whatever their retries, and the other states are of served classes only.
        """
        a = alarms_table
        query = sa.select(a).where(a.c.namespace == self.namespace)
        if served is not None and state is not None:
            served_class = a.c.class_name.in_(list(served))
            query = query.where(sa.not_(served_class) if state == "orphaned" else served_class)
        if tenant is not None:
            query = query.where(a.c.tenant == tenant)
        if due_before is not None:
            query = query.where(a.c.next_ms <= due_before)
        if class_name is not None:
            query = query.where(a.c.class_name == class_name)
        if object_ids is not None:
            query = query.where(a.c.object_id.in_(list(object_ids)))
        if state == "failed":
            query = query.where(a.c.next_ms.is_(None))
        elif state == "retrying":
            query = query.where(a.c.next_ms.is_not(None), a.c.retry_count > 0)
        elif state == "pending":
            query = query.where(a.c.next_ms.is_not(None), a.c.retry_count == 0)
        query = query.order_by(a.c.next_ms.is_(None), a.c.next_ms, a.c.object_id, a.c.name).limit(limit)
        with self.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(query).mappings()]
        for row in rows:
            row["kind"] = kind_of(row["name"])
            orphaned = served is not None and row["class_name"] not in served
            row["state"] = "orphaned" if orphaned else state_of(row["next_ms"], row["retry_count"])
        return rows

    def state_counts(self, tenant: str, served: Collection[str]) -> dict[str, int]:
        """How many of the tenant's alarms are in each state (STATES), as `listing` names them."""
        a = alarms_table
        state = sa.case(
            (sa.not_(a.c.class_name.in_(list(served))), "orphaned"),
            (a.c.next_ms.is_(None), "failed"),
            (a.c.retry_count > 0, "retrying"),
            else_="pending",
        ).label("state")
        query = (
            sa.select(state, sa.func.count())
            .where(a.c.namespace == self.namespace, a.c.tenant == tenant)
            .group_by(state)
        )
        with self.engine.connect() as conn:
            found = {str(name): int(count) for name, count in conn.execute(query)}
        return {name: found.get(name, 0) for name in STATES}

    def purge(
        self, tenant: str, class_name: str, *, object_id: str | None = None, name: str | None = None
    ) -> list[tuple[str, str, str]]:
        """Delete the index rows of a tenant's objects of one class (or of one object, or one of its
        alarms); returns (object id, object name, alarm name) of each, for the scheduler's time index
        to follow. For a class no longer served: the objects' own files keep their alarms, which come
        back should the class, and then the object, run again."""
        a = alarms_table
        mine = sa.and_(a.c.namespace == self.namespace, a.c.tenant == tenant, a.c.class_name == class_name)
        if object_id is not None:
            mine = sa.and_(mine, a.c.object_id == object_id)
        if name is not None:
            mine = sa.and_(mine, a.c.name == name)
        with self.engine.begin() as conn:
            rows = conn.execute(sa.select(a.c.object_id, a.c.object_name, a.c.name).where(mine)).all()
            conn.execute(a.delete().where(mine))
        return [(r[0], r[1], r[2]) for r in rows]
