"""Objects' durable state in the shared database: a log of WAL frames plus snapshots.

Every commit an owner makes is shipped as one log record, in one transaction
that first moves the object's head from ``seq - 1`` to ``seq`` *for the
owner's epoch*. If another owner has taken over (a higher epoch), or the
object was replaced or deleted, that update matches no row and the shipment
is refused: the former owner can never write again.

An object's state at sequence ``n`` is the newest snapshot at or before ``n``
with the log records after it applied (state/wal.py). A snapshot is written
when the log since the last one outgrows the database, so restoring reads at
most about twice the database. The compactor (state/compactor.py) removes
snapshots and log records older than the newest snapshot a restore within the
retention window still needs, so a state is always read in one statement: it
sees the snapshot and the records after it as of one moment.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from solo.objects.errors import IncompleteLog, StateConflict
from solo.objects.group_commit import GroupCommit
from solo.objects.naming import DEFAULT_TENANT
from solo.objects.state.driver_statement import DriverStatements
from solo.objects.state.epoch_floor import floor
from solo.objects.state.file_snapshots import insert_snapshot_file
from solo.objects.state.schema import log_table, objects_table, snapshots_table, utcnow
from solo.objects.state.wal import Frames, apply_frames

# Postgres: the fenced head move and the log insert as one autocommitted statement, one
# round trip (the general path below takes four: BEGIN, UPDATE, INSERT, COMMIT). The moved row
# also takes the object's size and last activity, so that listings show them current, and the
# schema version when the shipment gives one (hydrate's, after migrations). The frames go in
# binary (%(frames)b): half the bytes of bytea's text form, and no hex to parse on either side.
_SHIP_ONE_STATEMENT = """
WITH moved AS (
  UPDATE objects SET head_seq = %(seq)s, log_bytes = log_bytes + %(size)s,
    state_bytes = %(state_bytes)s, last_active_at = %(created_at)s,
    schema_version = coalesce(%(schema_version)s::integer, schema_version)
  WHERE id = %(id)s AND epoch = %(epoch)s AND head_seq = %(seq)s - 1 AND NOT deleted
  RETURNING id
)
INSERT INTO object_log (object_id, seq, epoch, page_size, db_pages, frames, created_at)
SELECT id, %(seq)s, %(epoch)s, %(page_size)s, %(db_pages)s, %(frames)b, %(created_at)s FROM moved
"""

# Postgres: the same for several objects at once (group commit, docs/adr/0008): one row of `v` per
# object, each head moved only under its own fence, and a log record inserted for each head that
# moved. The ids it returns are the shipments accepted; any other was fenced off, alone.
_SHIP_GROUP_STATEMENT = """
WITH v AS (
  SELECT * FROM unnest(%(id)s::text[], %(epoch)s::bigint[], %(seq)s::bigint[], %(size)s::bigint[],
    %(state_bytes)s::bigint[], %(schema_version)s::integer[], %(page_size)s::integer[], %(db_pages)s::bigint[],
    %(frames)b::bytea[]) AS v(id, epoch, seq, size, state_bytes, schema_version, page_size, db_pages, frames)
), moved AS (
  UPDATE objects o SET head_seq = v.seq, log_bytes = o.log_bytes + v.size,
    state_bytes = v.state_bytes, last_active_at = %(created_at)s,
    schema_version = coalesce(v.schema_version, o.schema_version)
  FROM v
  WHERE o.id = v.id AND o.epoch = v.epoch AND o.head_seq = v.seq - 1 AND NOT o.deleted
  RETURNING o.id
), logged AS (
  INSERT INTO object_log (object_id, seq, epoch, page_size, db_pages, frames, created_at)
  SELECT v.id, v.seq, v.epoch, v.page_size, v.db_pages, v.frames, %(created_at)s FROM v JOIN moved ON moved.id = v.id
  RETURNING object_id
)
SELECT object_id FROM logged
"""

# Postgres: a snapshot in one autocommitted statement (the general path below takes four round trips
# and SQLAlchemy's statement building): the object's snapshot sequence moves only for the epoch that
# holds the head at `seq`, and the image is inserted only if it moved, unless the compactor wrote
# that sequence's image already. Returns how many rows moved (0: fenced off, nothing written).
_SNAPSHOT_STATEMENT = """
WITH moved AS (
  UPDATE objects SET snapshot_seq = %(seq)s, log_bytes = 0
  WHERE id = %(id)s AND epoch = %(epoch)s AND head_seq = %(seq)s AND NOT deleted
  RETURNING id
), kept AS (
  INSERT INTO object_snapshots (object_id, seq, epoch, image, created_at)
  SELECT id, %(seq)s, %(epoch)s, %(image)b, %(created_at)s FROM moved
  ON CONFLICT (object_id, seq) DO NOTHING
)
SELECT count(*) FROM moved
"""

# Grouped shipments under way at once, each on its own pooled connection: one at a time made every
# shipment of a worker wait for the one before it (6 % fewer calls/s on a quiet machine, ADR 0008).
SHIPMENT_ROUND_TRIPS = 4

_SHIPMENT_FIELDS = ("id", "epoch", "seq", "size", "state_bytes", "schema_version", "page_size", "db_pages", "frames")


class SharedWrite(Protocol):
    """Rows that must commit with a change of an object's state (its alarms' index rows, for one).

    The store writes them inside the same transaction, after the fence has passed, so they
    become visible exactly when the state they belong to is durable.
    """

    def write(self, conn: Connection) -> None: ...


@dataclass(frozen=True)
class Shipment:
    """One object's log record, as the shipping statements take it."""

    id: str
    epoch: int
    seq: int
    size: int
    state_bytes: int
    schema_version: int | None
    page_size: int
    db_pages: int
    frames: bytes


def _fields(shipment: Shipment) -> dict[str, object]:
    return {name: getattr(shipment, name) for name in _SHIPMENT_FIELDS}


@dataclass(frozen=True)
class Head:
    seq: int
    snapshot_seq: int
    log_bytes: int


class StateStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        postgres = engine.dialect.name == "postgresql"
        # Postgres: the shipment's one statement, run by psycopg itself (docs/adr/0017).
        self._driver = DriverStatements(engine) if postgres else None
        self._insert = postgresql.insert if postgres else sqlite.insert
        # Drain threads that ship at the same moment share one statement (docs/adr/0008).
        self.shipments: GroupCommit[Shipment, bool] = GroupCommit(self.ship_together, SHIPMENT_ROUND_TRIPS)

    # -- the owner's side --------------------------------------------------

    def ship(
        self,
        object_id: str,
        epoch: int,
        seq: int,
        frames: Frames,
        writes: Sequence[SharedWrite] = (),
        shared: Connection | None = None,
        *,
        schema_version: int | None = None,
    ) -> bool:
        """Append log record `seq`; False (nothing written) if this owner has been fenced off.

        `schema_version`, if given, is recorded with it (an activation's first shipment, after migrations:
        from then on older code refuses the object).

        `writes` commit in the same transaction (the commit's changed alarm rows, so the
        scheduler sees an alarm exactly when its state is durable). `shared` is the commit's
        own open shared-database transaction (objects/shared.py): the shipment is written and
        committed in it, or it is rolled back. Either way it is closed.
        """
        if self._driver is not None and not writes and shared is None:  # the common case, one round trip
            shipment = Shipment(
                id=object_id,
                epoch=epoch,
                seq=seq,
                size=len(frames.data),
                state_bytes=frames.db_pages * frames.page_size,
                schema_version=schema_version,
                page_size=frames.page_size,
                db_pages=frames.db_pages,
                frames=frames.data,
            )
            return self.shipments.run(shipment)
        o = objects_table
        with self._transaction(shared) as conn:
            moved = conn.execute(
                o.update()
                .where(o.c.id == object_id, o.c.epoch == epoch, o.c.head_seq == seq - 1, o.c.deleted.is_(False))
                .values(
                    head_seq=seq,
                    log_bytes=o.c.log_bytes + len(frames.data),
                    # Current while the object is active (listings, object info), in the row moved anyway.
                    state_bytes=frames.db_pages * frames.page_size,
                    last_active_at=utcnow(),
                    **({} if schema_version is None else {"schema_version": schema_version}),
                )
            ).rowcount
            if moved != 1:
                conn.rollback()
                return False
            conn.execute(
                log_table.insert().values(
                    object_id=object_id,
                    seq=seq,
                    epoch=epoch,
                    page_size=frames.page_size,
                    db_pages=frames.db_pages,
                    frames=frames.data,
                    created_at=utcnow(),
                )
            )
            for write in writes:
                write.write(conn)
            conn.commit()
        return True

    def ship_together(self, shipments: Sequence[Shipment]) -> list[bool]:
        """Ship each under its own fence, all in one autocommitted statement (Postgres); whether
        each was accepted. `ship`'s common case comes here through `shipments`, the group commit."""
        assert self._driver is not None
        created_at = utcnow()
        if len(shipments) == 1 or len({s.id for s in shipments}) < len(shipments):
            # One object's head moves once per statement; one drain per object never ships two
            # at once, but should it, they go one after the other, in order.
            return [
                self._driver.execute(_SHIP_ONE_STATEMENT, {**_fields(s), "created_at": created_at}) == 1
                for s in shipments
            ]
        values: dict[str, object] = {name: [getattr(s, name) for s in shipments] for name in _SHIPMENT_FIELDS}
        values["created_at"] = created_at
        accepted = set(self._driver.first_column(_SHIP_GROUP_STATEMENT, values))
        return [s.id in accepted for s in shipments]

    def commit_shared(self, object_id: str, epoch: int, shared: Connection) -> bool:
        """Commit shared writes that came with no change to the object's file, if `epoch` still owns it."""
        o = objects_table
        with self._transaction(shared) as conn:
            mine = sa.select(o.c.id).where(o.c.id == object_id, o.c.epoch == epoch, o.c.deleted.is_(False))
            owned = conn.execute(mine.with_for_update()).first()
            if owned is None:
                conn.rollback()
                return False
            conn.commit()
        return True

    @contextlib.contextmanager
    def _transaction(self, shared: Connection | None) -> Iterator[Connection]:
        """The given open transaction, or a new one; closed (rolled back unless committed) at the end."""
        conn = shared if shared is not None else self.engine.connect()
        try:
            if shared is None:
                conn.begin()
            yield conn
        finally:
            conn.close()

    def snapshot(self, object_id: str, epoch: int, seq: int, image: bytes) -> bool:
        """Record the full image at head `seq`, so that later restores start from here.

        The compactor may have written the same sequence's image already (it folds idle
        objects' logs): the state at a sequence never changes, so that one stays.
        """
        if self._driver is not None:
            parameters = {"id": object_id, "seq": seq, "epoch": epoch, "image": image, "created_at": utcnow()}
            return bool(self._driver.first_column(_SNAPSHOT_STATEMENT, parameters)[0])
        o = objects_table
        with self.engine.begin() as conn:
            moved = conn.execute(
                o.update()
                .where(o.c.id == object_id, o.c.epoch == epoch, o.c.head_seq == seq, o.c.deleted.is_(False))
                .values(snapshot_seq=seq, log_bytes=0)
            ).rowcount
            if moved != 1:
                conn.rollback()
                return False
            conn.execute(
                self.snapshot_insert()
                .values(object_id=object_id, seq=seq, epoch=epoch, image=image, created_at=utcnow())
                .on_conflict_do_nothing(index_elements=[snapshots_table.c.object_id, snapshots_table.c.seq])
            )
        return True

    def snapshot_insert(self) -> postgresql.Insert | sqlite.Insert:
        """An INSERT into the snapshots in this database's dialect (it can skip a sequence already there)."""
        return self._insert(snapshots_table)

    def head(self, object_id: str) -> Head | None:
        o = objects_table
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(o.c.head_seq, o.c.snapshot_seq, o.c.log_bytes).where(
                    o.c.id == object_id, o.c.deleted.is_(False)
                )
            ).first()
        return None if row is None else Head(*row)

    # -- reading state -----------------------------------------------------

    def image_at(self, object_id: str, seq: int) -> bytes:
        """The database image after log record `seq` (empty for seq 0).

        One statement reads the newest snapshot at or before `seq` and the log records after
        it, so a compaction that moves the oldest snapshot forward meanwhile is seen either
        wholly or not at all.
        """
        if seq <= 0:
            return b""
        s, lg = snapshots_table, log_table
        base = sa.select(sa.func.max(s.c.seq)).where(s.c.object_id == object_id, s.c.seq <= seq).scalar_subquery()
        snapshot = sa.select(s.c.seq, sa.literal(0).label("page_size"), s.c.image.label("data")).where(
            s.c.object_id == object_id, s.c.seq == base
        )
        records = sa.select(lg.c.seq, lg.c.page_size, lg.c.frames.label("data")).where(
            lg.c.object_id == object_id, lg.c.seq > sa.func.coalesce(base, 0), lg.c.seq <= seq
        )
        image = bytearray()
        expected = 1
        with self.engine.connect() as conn:
            for part_seq, page_size, data in conn.execute(sa.union_all(snapshot, records).order_by("seq")):
                if page_size == 0:  # the snapshot: the records start after it
                    image, expected = bytearray(data), part_seq + 1
                    continue
                if part_seq != expected:
                    raise IncompleteLog(f"log of {object_id} has a gap before seq {part_seq}")
                apply_frames(image, data, page_size)
                expected += 1
        if expected != seq + 1:
            raise IncompleteLog(f"log of {object_id} ends at {expected - 1}, not {seq}")
        return bytes(image)

    def seq_at(self, object_id: str, at: dt.datetime) -> int:
        """The last sequence committed at or before `at`, by a shipment or a snapshot (0 if none)."""
        lg, sn = log_table, snapshots_table
        with self.engine.connect() as conn:
            logged = conn.execute(
                sa.select(sa.func.max(lg.c.seq)).where(lg.c.object_id == object_id, lg.c.created_at <= at)
            ).scalar()
            snapped = conn.execute(
                sa.select(sa.func.max(sn.c.seq)).where(sn.c.object_id == object_id, sn.c.created_at <= at)
            ).scalar()
        return max(int(logged or 0), int(snapped or 0))

    def restorable_from(self, object_id: str) -> int:
        """The earliest sequence the kept snapshots and log can rebuild: 1 while the log from the
        start is kept, else the oldest snapshot (0: nothing yet)."""
        s, lg = snapshots_table, log_table
        with self.engine.connect() as conn:
            if conn.execute(sa.select(lg.c.seq).where(lg.c.object_id == object_id, lg.c.seq == 1)).first():
                return 1
            value = conn.execute(sa.select(sa.func.min(s.c.seq)).where(s.c.object_id == object_id)).scalar()
        return int(value or 0)

    def committed_at(self, object_id: str, seq: int) -> dt.datetime | None:
        """When sequence `seq` became durable (its log record or snapshot), if it is still kept."""
        s, lg = snapshots_table, log_table
        with self.engine.connect() as conn:
            for table in (lg, s):
                at = conn.execute(
                    sa.select(table.c.created_at).where(table.c.object_id == object_id, table.c.seq == seq)
                ).scalar()
                if isinstance(at, dt.datetime):
                    return at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)  # SQLite: naive UTC
        return None

    def written_by(self, object_id: str, seq: int) -> int | None:
        """The epoch that made sequence `seq` durable (its log record or snapshot), if it is still kept."""
        s, lg = snapshots_table, log_table
        with self.engine.connect() as conn:
            for table in (lg, s):
                epoch = conn.execute(
                    sa.select(table.c.epoch).where(table.c.object_id == object_id, table.c.seq == seq)
                ).scalar()
                if epoch is not None:
                    return int(epoch)
        return None

    # -- operators' side ---------------------------------------------------

    def replace(
        self,
        object_id: str,
        namespace: str,
        class_name: str,
        name: str,
        image: bytes | Path,
        writes: Sequence[SharedWrite] = (),
        *,
        tenant: str = DEFAULT_TENANT,
    ) -> int:
        """Make `image` the object's state (import, restore). Fences any owner; returns the new seq.

        `image` is the database's bytes, or a file that holds them (an import): the file is
        read in chunks as it is written (state/file_snapshots.py). `writes` commit in the
        same transaction (the alarm index rewritten from the image).

        Raises StateConflict, having changed nothing, when the object had no row and another
        operation made one meanwhile (two imports into one new name: one of them wins).
        """
        now = utcnow()
        o = objects_table
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(o.c.head_seq).where(o.c.id == object_id).with_for_update()).first()
            if row is None:  # made anew: above the epochs of any pruned former incarnation
                made = conn.execute(
                    self._insert(o)
                    .values(
                        id=object_id,
                        namespace=namespace,
                        tenant=tenant,
                        class_name=class_name,
                        name=name,
                        epoch=floor() + 1,
                        created_at=now,
                        last_active_at=now,
                        head_seq=1,
                        snapshot_seq=1,
                    )
                    # Another operation made the row after our look (which locks nothing that is not
                    # there yet): this insert waits for it, then does nothing. No conflict target:
                    # the id and the (namespace, tenant, class, name) index name the same object.
                    .on_conflict_do_nothing()
                    .returning(o.c.epoch)
                ).scalar()
                if made is None:
                    raise StateConflict(f"{class_name}/{name} was made by another operation at the same moment; retry")
                epoch, seq = made, 1
            else:
                seq = row[0] + 1
                epoch = conn.execute(
                    o.update()
                    .where(o.c.id == object_id)
                    .values(
                        epoch=o.c.epoch + 1,
                        head_seq=seq,
                        snapshot_seq=seq,
                        log_bytes=0,
                        deleted=False,
                        last_active_at=now,
                    )
                    .returning(o.c.epoch)
                ).scalar_one()
            if isinstance(image, Path):
                insert_snapshot_file(conn, object_id, seq, epoch, image, now)
            else:
                conn.execute(
                    snapshots_table.insert().values(
                        object_id=object_id, seq=seq, epoch=epoch, image=image, created_at=now
                    )
                )
            for write in writes:
                write.write(conn)
        return seq

    def delete(self, object_id: str, writes: Sequence[SharedWrite] = ()) -> bool:
        """Remove all state. The row stays as a tombstone whose epoch keeps former owners fenced,
        and the sequence keeps growing (an empty snapshot) so no old local copy can match it.
        Its `last_active_at` is the time of the delete: the compactor prunes the tombstone once
        that is older than the retention window (raising the epoch floor first).
        `writes` commit with the delete (the object's alarm rows removed)."""
        o = objects_table
        with self.engine.begin() as conn:
            row = conn.execute(
                o.update()
                .where(o.c.id == object_id, o.c.deleted.is_(False))
                .values(
                    epoch=o.c.epoch + 1,
                    deleted=True,
                    head_seq=o.c.head_seq + 1,
                    log_bytes=0,
                    snapshot_seq=o.c.head_seq + 1,
                    schema_version=0,
                    state_bytes=0,
                    last_active_at=utcnow(),
                )
                .returning(o.c.epoch, o.c.head_seq)
            ).first()
            if row is not None:
                conn.execute(log_table.delete().where(log_table.c.object_id == object_id))
                for write in writes:
                    write.write(conn)
                conn.execute(snapshots_table.delete().where(snapshots_table.c.object_id == object_id))
                conn.execute(
                    snapshots_table.insert().values(
                        object_id=object_id, seq=row[1], epoch=row[0], image=b"", created_at=utcnow()
                    )
                )
        return row is not None

    def shipped_bytes(self, object_id: str, seq: int) -> int:
        """Size of one log record (for benchmarks and tests)."""
        lg = log_table
        with self.engine.connect() as conn:
            value = conn.execute(
                sa.select(sa.func.length(lg.c.frames)).where(lg.c.object_id == object_id, lg.c.seq == seq)
            ).scalar()
        return int(value or 0)
