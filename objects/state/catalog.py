"""The object catalog and activation ledger in the shared database.

The catalog mints fencing epochs: every takeover increments the object's
epoch in the same transaction that records the activation, so two owners can
never hold the same epoch, even across a Redis restart. A row made anew starts
above the epoch floor (state/epoch_floor.py), so epochs of an object whose
tombstone was pruned keep growing too.

On Postgres a takeover is one autocommitted statement, one round trip: the
upsert that mints the epoch and the activation row, in one WITH. A row made
anew there starts above both the floor and any row of the same id that the
statement's snapshot saw: a tombstone pruned while the statement ran was seen
by it (the prune raised the floor in an earlier transaction, which committed
after the snapshot, or the floor read sees it too), so no second look at the
floor is needed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields
from typing import Any, overload

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine, RowMapping

from solo.objects.errors import SchemaTooNew
from solo.objects.naming import DEFAULT_TENANT
from solo.objects.state.driver_statement import DriverStatements
from solo.objects.state.epoch_floor import above_floor, floor
from solo.objects.state.schema import activations_table, objects_table, utcnow

# Postgres: the takeover in one statement (see the module's docstring). All parts of a WITH
# see one snapshot; the activation row is written only when the upsert returned a row.
_TAKE_OVER_ONE_STATEMENT = """
WITH taken AS (
  INSERT INTO objects (id, namespace, tenant, class_name, name, epoch, created_at, last_active_at)
  VALUES (%(id)s::text, %(namespace)s, %(tenant)s, %(class_name)s, %(name)s,
    GREATEST((SELECT coalesce(max(epoch), 0) FROM epoch_floor),
             (SELECT max(epoch) FROM objects WHERE id = %(id)s::text)) + 1,
    %(now)s, %(now)s)
  ON CONFLICT (id) DO UPDATE SET
    epoch = objects.epoch + 1, last_active_at = %(now)s, deleted = false,
    schema_version = CASE WHEN objects.deleted THEN 0 ELSE objects.schema_version END
  WHERE objects.schema_version <= %(known_schema)s OR objects.deleted
  RETURNING id, epoch, head_seq, schema_version, tenant, log_bytes, last_active_at
), recorded AS (
  INSERT INTO activations (object_id, epoch, worker_id, started_at)
  SELECT id, epoch, %(worker_id)s, last_active_at FROM taken
)
SELECT epoch, head_seq, schema_version, tenant, log_bytes FROM taken
"""


@dataclass(frozen=True)
class ObjectInfo:
    id: str
    namespace: str
    tenant: str
    class_name: str
    name: str
    epoch: int
    schema_version: int
    state_bytes: int
    created_at: dt.datetime
    last_active_at: dt.datetime
    head_seq: int


@dataclass(frozen=True)
class Takeover:
    epoch: int
    head_seq: int  # the last durable log record: hydrate restores up to here
    schema_version: int  # as recorded; an activation's first shipment records the one after migrations
    tenant: str  # as recorded when the object was created (a fire call does not name it)
    log_bytes: int = 0  # shipped since the last snapshot: when the new owner's first snapshot is due


@dataclass(frozen=True)
class Activation:
    object_id: str
    epoch: int
    worker_id: str
    started_at: dt.datetime
    stopped_at: dt.datetime | None


@overload
def _aware(value: dt.datetime) -> dt.datetime: ...
@overload
def _aware(value: dt.datetime | None) -> dt.datetime | None: ...
def _aware(value: dt.datetime | None) -> dt.datetime | None:
    # SQLite hands back naive datetimes; every time stored here is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


class Catalog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        postgres = engine.dialect.name == "postgresql"
        self._insert = postgresql.insert if postgres else sqlite.insert
        # Postgres: the takeover's one statement through psycopg on a pooled connection, without
        # SQLAlchemy's Connection (as the shipment, docs/adr/0021): errors are still SQLAlchemy's.
        self._driver = DriverStatements(engine) if postgres else None

    def take_over(
        self,
        object_id: str,
        namespace: str,
        class_name: str,
        name: str,
        worker_id: str,
        known_schema: int,
        tenant: str = DEFAULT_TENANT,
    ) -> Takeover:
        """Mint the next epoch for an object (creating or reviving its entry) and record the activation.

        `tenant` is recorded only when the entry is created: the id already names the tenant.

        Refuses (SchemaTooNew, nothing changed) when the object's schema is newer
        than the `known_schema` migrations of the calling worker's code.
        """
        now = utcnow()
        if self._driver is not None:
            return self._take_over_in_one(
                {
                    "id": object_id,
                    "namespace": namespace,
                    "tenant": tenant,
                    "class_name": class_name,
                    "name": name,
                    "now": now,
                    "known_schema": known_schema,
                    "worker_id": worker_id,
                }
            )
        t = objects_table
        upsert = (
            self._insert(t)
            .values(
                id=object_id,
                namespace=namespace,
                tenant=tenant,
                class_name=class_name,
                name=name,
                epoch=floor() + 1,
                created_at=now,
                last_active_at=now,
            )
            .on_conflict_do_update(
                index_elements=[t.c.id],
                set_={
                    "epoch": t.c.epoch + 1,
                    "last_active_at": now,
                    "deleted": False,
                    "schema_version": sa.case((t.c.deleted, 0), else_=t.c.schema_version),
                },
                where=sa.or_(t.c.schema_version <= known_schema, t.c.deleted),
            )
            .returning(t.c.epoch, t.c.head_seq, t.c.schema_version, t.c.tenant, t.c.created_at, t.c.log_bytes)
        )
        with self.engine.begin() as conn:
            row = conn.execute(upsert).first()
            if row is None:
                raise self._too_new(conn, object_id, class_name, name, known_schema)
            epoch, head_seq, schema_version, recorded_tenant = int(row[0]), int(row[1]), int(row[2]), str(row[3])
            if _aware(row[4]) == now:  # made anew: a prune may have raised the floor during the statement
                epoch = above_floor(conn, object_id)
            conn.execute(
                activations_table.insert().values(object_id=object_id, epoch=epoch, worker_id=worker_id, started_at=now)
            )
        return Takeover(epoch, head_seq, schema_version, recorded_tenant, int(row[5]))

    def _take_over_in_one(self, values: dict[str, Any]) -> Takeover:
        """`take_over` on Postgres: `_TAKE_OVER_ONE_STATEMENT` with its arguments as parameters."""
        assert self._driver is not None
        row = self._driver.first_row(_TAKE_OVER_ONE_STATEMENT, values)
        if row is None:  # refused, nothing written: the recorded version for the message
            with self.engine.connect() as conn:
                raise self._too_new(conn, values["id"], values["class_name"], values["name"], values["known_schema"])
        return Takeover(int(row[0]), int(row[1]), int(row[2]), str(row[3]), int(row[4]))

    @staticmethod
    def _too_new(conn: sa.Connection, object_id: str, class_name: str, name: str, known_schema: int) -> SchemaTooNew:
        t = objects_table
        version = conn.execute(sa.select(t.c.schema_version).where(t.c.id == object_id)).scalar()
        return SchemaTooNew(
            f"{class_name}/{name} has schema version {version}; this code knows {known_schema} migrations"
        )

    def record_stop(self, object_id: str, epoch: int, *, state_bytes: int, schema_version: int) -> None:
        now = utcnow()
        with self.engine.begin() as conn:
            conn.execute(
                activations_table.update()
                .where(activations_table.c.object_id == object_id, activations_table.c.epoch == epoch)
                .values(stopped_at=now)
            )
            conn.execute(
                objects_table.update()
                .where(objects_table.c.id == object_id, objects_table.c.epoch == epoch)
                .values(last_active_at=now, state_bytes=state_bytes, schema_version=schema_version)
            )

    def get(self, object_id: str) -> ObjectInfo | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    sa.select(*(objects_table.c[f.name] for f in fields(ObjectInfo))).where(
                        objects_table.c.id == object_id, objects_table.c.deleted.is_(False)
                    )
                )
                .mappings()
                .first()
            )
        return None if row is None else _info(row)

    def page(
        self,
        namespace: str,
        tenant: str,
        *,
        class_name: str | None = None,
        prefix: str | None = None,
        after: tuple[str, str] | None = None,
        limit: int = 100,
    ) -> list[ObjectInfo]:
        """A tenant's objects in (class, name) order, after the (class, name) `after`: a keyset page.

        Deleted objects are left out. See `page_query` for how it stays one range of an index.
        A `prefix` without a class is a range in each class: the classes are found one index
        probe each (`classes_query`), then their ranges read in order until the page is full.
        """
        with self.engine.connect() as conn:
            if not prefix or class_name is not None:
                query = page_query(namespace, tenant, class_name=class_name, prefix=prefix, after=after, limit=limit)
                return [_info(row) for row in conn.execute(query).mappings()]
            found: list[ObjectInfo] = []
            first = after[0] if after is not None else ""
            for each in conn.execute(classes_query(namespace, tenant, first)).scalars():
                query = page_query(
                    namespace, tenant, class_name=str(each), prefix=prefix, after=after, limit=limit - len(found)
                )
                found += [_info(row) for row in conn.execute(query).mappings()]
                if len(found) >= limit:
                    break
            return found

    def history(self, object_id: str) -> list[Activation]:
        a = activations_table
        query = sa.select(a.c.object_id, a.c.epoch, a.c.worker_id, a.c.started_at, a.c.stopped_at)
        with self.engine.connect() as conn:
            rows = conn.execute(query.where(a.c.object_id == object_id).order_by(a.c.epoch)).all()
        return [Activation(r[0], r[1], r[2], _aware(r[3]), _aware(r[4])) for r in rows]

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))


def page_query(
    namespace: str,
    tenant: str,
    *,
    class_name: str | None = None,
    prefix: str | None = None,
    after: tuple[str, str] | None = None,
    limit: int = 100,
) -> sa.Select[tuple[object, ...]]:
    """The query of Catalog.page: one range of the address index (namespace, tenant, class_name,
    name), which orders names by their bytes on both databases (schema._byte_ordered).

    `class_name` narrows the range to a class; `prefix` to names starting with it (Catalog.page
    asks class by class when no class is given, so that this too is a range).
    """
    o = objects_table
    query = sa.select(*(o.c[f.name] for f in fields(ObjectInfo))).where(
        o.c.namespace == namespace, o.c.tenant == tenant, o.c.deleted.is_(False)
    )
    if class_name is not None:
        query = query.where(o.c.class_name == class_name)
    if prefix:
        query = query.where(o.c.name >= prefix)
        end = _after_prefix(prefix)
        if end is not None:
            query = query.where(o.c.name < end)
    if after is not None:
        after_class, after_name = after
        if class_name is None:
            query = query.where(sa.tuple_(o.c.class_name, o.c.name) > sa.tuple_(after_class, after_name))
        # Within a class, the cursor bounds the name: a row comparison starting at class_name would not
        # bound the index range after the equality on it. (Class names are ASCII: str order is byte order.)
        elif after_class == class_name:
            query = query.where(o.c.name > after_name)
        elif after_class > class_name:
            query = query.where(sa.false())  # the cursor is past this class
    return query.order_by(o.c.class_name, o.c.name).limit(limit)


def classes_query(namespace: str, tenant: str, first: str) -> sa.Select[tuple[object, ...]]:
    """The classes a tenant has objects of, from `first` on, in order: one probe of the address
    index per class (a loose index scan, as a recursive query), however many objects each has."""
    o = objects_table
    mine = sa.and_(o.c.namespace == namespace, o.c.tenant == tenant)
    start = sa.select(sa.func.min(o.c.class_name).label("class_name")).where(mine, o.c.class_name >= first)
    found = start.cte("classes", recursive=True)
    following = (
        sa.select(sa.func.min(o.c.class_name)).where(mine, o.c.class_name > found.c.class_name).scalar_subquery()
    )
    found = found.union_all(sa.select(following).where(found.c.class_name.is_not(None)))
    return sa.select(found.c.class_name).where(found.c.class_name.is_not(None))


def _info(row: RowMapping) -> ObjectInfo:
    values = dict(row)
    values["created_at"] = _aware(values["created_at"])
    values["last_active_at"] = _aware(values["last_active_at"])
    return ObjectInfo(**values)


_LAST_CODE_POINT = 0x10FFFF


def _after_prefix(prefix: str) -> str | None:
    """The least string, in byte (code point) order, above every string that starts with `prefix`;
    None if there is none (the prefix is all U+10FFFF)."""
    stem = prefix.rstrip(chr(_LAST_CODE_POINT))
    if not stem:
        return None
    bumped = ord(stem[-1]) + 1
    if 0xD800 <= bumped <= 0xDFFF:  # surrogates are not text: the next code point is U+E000
        bumped = 0xE000
    return stem[:-1] + chr(bumped)
