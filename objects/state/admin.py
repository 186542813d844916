"""An operator's actions on an object's durable state: export, import, restore, delete.

Every acknowledged commit is in the shared database before its reply, so these
read and write the StateStore directly and never ask the owner. Import and
restore go through ``StateStore.replace``, which moves the object to a new
epoch: a current owner's next shipment is refused, it drops the object, and the
next activation hydrates the new state. Delete leaves a tombstone whose epoch
fences the owner the same way.

The object's alarm rows in the shared index are rewritten in the same
transaction; each action returns what the scheduler's time index must learn
(`Due` entries), which the caller announces once the action is durable.

A restore reaches back through the retention window (SOLO_RETENTION_S): to any
time inside it, and to any sequence from the state at its start on. The
window is enforced here, whatever the compactor has pruned yet, so the
answer does not depend on when it last ran.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from solo.objects.alarms import AlarmRow
from solo.objects.errors import IncompleteLog, InvalidImage, ObjectNotFound, OutOfRetention
from solo.objects.naming import Address
from solo.objects.registry import ClassRegistry
from solo.objects.state.alarm_index import Due, ReplaceObjectAlarms, rows_of_image
from solo.objects.state.images import Rules, check_import, check_schema_of
from solo.objects.state.schema import utcnow
from solo.objects.state.store import StateStore
from solo.objects.state.wal import plain_file

DEFAULT_RETENTION_S = 7 * 24 * 3600.0


@dataclass(frozen=True)
class Replaced:
    """The object's state is now `seq`; `alarms` tell the scheduler's index what changed."""

    seq: int
    restored_from: int | None = None
    alarms: list[Due] = field(default_factory=list)


class StateAdmin:
    def __init__(
        self,
        store: StateStore,
        namespace: str,
        retention_s: float = DEFAULT_RETENTION_S,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.store = store
        self.namespace = namespace
        self.retention = dt.timedelta(seconds=retention_s)
        self.clock = clock

    @staticmethod
    def _not_found(address: Address) -> ObjectNotFound:
        return ObjectNotFound(f"{address.ref} has no state (never called, or deleted)")

    def export(self, address: Address) -> tuple[int, bytes]:
        """(sequence, a plain .sqlite file) of the object's latest durable state."""
        head = self.store.head(address.object_id)
        if head is None or head.seq == 0:
            raise self._not_found(address)
        try:
            image = self.store.image_at(address.object_id, head.seq)
        except IncompleteLog:  # the log vanished under us: deleted meanwhile?
            if self.store.head(address.object_id) is None:
                raise self._not_found(address) from None
            raise
        return head.seq, plain_file(image)

    def import_file(self, address: Address, path: Path, registry: ClassRegistry) -> Replaced:
        """Make an untrusted file the object's state, if it is a sound database of solo's for its class.

        `path` is the caller's own temporary copy, which the checks change (images.check_import)
        and the store reads from in chunks: the file is never held in memory whole. It is checked
        and parsed before anything is written; the alarm index is rewritten from the rows parsed there.
        """
        rules = Rules(registry.get(address.class_name), self.namespace, registry, address.tenant)
        checked = check_import(path, rules)
        return self._replace(address, path, checked.alarms)

    def restore(self, address: Address, point: int | dt.datetime) -> Replaced:
        """Return the object to a sequence, or to its last commit at or before an (aware) time,
        within the retention window."""
        oid = address.object_id
        head = self.store.head(oid)
        if head is None:
            raise self._not_found(address)
        window_start = self.clock() - self.retention
        first = max(self.store.restorable_from(oid), self.store.seq_at(oid, window_start))
        if head.seq == 0 or first == 0:
            raise OutOfRetention(f"{address.ref} has no restorable state yet")
        window = self._window(oid, first, head.seq)
        if isinstance(point, dt.datetime):
            if point < window_start:
                raise OutOfRetention(
                    f"{point.isoformat()} is before the retention window, which starts at"
                    f" {window_start.isoformat(timespec='seconds')}; {window}"
                )
            seq = self.store.seq_at(oid, point)
            if seq < first:
                raise OutOfRetention(f"nothing restorable was committed at or before {point.isoformat()}; {window}")
        else:
            seq = point
            if not first <= seq <= head.seq:
                raise OutOfRetention(f"sequence {seq} is out of the retention window; {window}")
        try:
            image = self.store.image_at(oid, seq)
        except IncompleteLog as exc:  # retention removed part of the log meanwhile
            raise OutOfRetention(f"sequence {seq} can no longer be rebuilt ({exc}); {window}") from None
        try:
            check_schema_of(image)  # a state imported before files were checked may carry triggers
        except InvalidImage as exc:
            raise InvalidImage(f"the state at sequence {seq} cannot be restored: {exc.message}") from None
        replaced = self._replace(address, image, rows_of_image(image))
        return Replaced(replaced.seq, seq, replaced.alarms)

    def _window(self, object_id: str, first: int, last: int) -> str:
        """What can be restored, naming the oldest point: for the messages of out_of_retention."""
        at = self.store.committed_at(object_id, first)
        oldest = f", the oldest committed at {at.isoformat(timespec='seconds')}" if at is not None else ""
        return f"sequences {first} to {last} can be restored{oldest}"

    def delete(self, address: Address) -> list[Due]:
        """Remove the object's state and its alarms; returns what the time index must drop."""
        alarms = self._alarm_rows(address, [])
        if not self.store.delete(address.object_id, [alarms]):
            raise self._not_found(address)
        return alarms.due

    def _replace(self, address: Address, image: bytes | Path, alarm_rows: list[AlarmRow]) -> Replaced:
        alarms = self._alarm_rows(address, alarm_rows)
        seq = self.store.replace(
            address.object_id, self.namespace, address.class_name, address.name, image, [alarms], tenant=address.tenant
        )
        return Replaced(seq, alarms=alarms.due)

    def _alarm_rows(self, address: Address, rows: list[AlarmRow]) -> ReplaceObjectAlarms:
        return ReplaceObjectAlarms(
            address.object_id, self.namespace, address.class_name, address.name, rows, tenant=address.tenant
        )
