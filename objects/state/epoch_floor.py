"""The epoch floor: fencing that outlives a pruned tombstone.

A deleted object keeps its row (a tombstone) so that its epoch keeps growing and
fences every former owner. The compactor prunes tombstones older than the
retention window; before it removes one it raises the floor to the tombstone's
epoch, in a transaction of its own that commits first. A row made anew (the
catalog's takeover of an object without a row, an import into one) starts
above the floor, so its epochs are higher than any a former incarnation
handed out, and an owner of that incarnation, however long it was paused, can
never match one.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from solo.objects.state.schema import epoch_floor_table, objects_table

_ROW = 1


def floor() -> sa.ScalarSelect[int]:
    """The floor, as a subquery a statement can use (0 when no tombstone was ever pruned)."""
    f = epoch_floor_table
    return sa.select(sa.func.coalesce(sa.func.max(f.c.epoch), 0)).scalar_subquery()


def raise_floor(conn: Connection, epoch: int) -> None:
    """Make the floor at least `epoch`; the caller commits before removing the tombstones."""
    f = epoch_floor_table
    raised = conn.execute(
        f.update().where(f.c.id == _ROW).values(epoch=sa.case((f.c.epoch < epoch, epoch), else_=f.c.epoch))
    ).rowcount
    if raised == 0:  # a database whose row was removed by hand
        conn.execute(f.insert().values(id=_ROW, epoch=epoch))


def above_floor(conn: Connection, object_id: str) -> int:
    """Lift a row just made anew above the floor, if a concurrent prune raised it meanwhile; its epoch.

    The insert read the floor when its statement began; a tombstone of the same id
    pruned during that statement was above it. Read again in a new statement, the floor
    is the one committed before that tombstone went.
    """
    o = objects_table
    lifted = conn.execute(
        o.update().where(o.c.id == object_id, o.c.epoch <= floor()).values(epoch=floor() + 1).returning(o.c.epoch)
    ).scalar()
    if lifted is not None:
        return int(lifted)
    return int(conn.execute(sa.select(o.c.epoch).where(o.c.id == object_id)).scalar_one())
