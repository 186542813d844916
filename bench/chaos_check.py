"""The chaos checker: verdicts from what the clients saw and from what the shared database holds.

Pure functions over records, so that they can be tested and reasoned about
apart from the harness (bench/chaos.py explains why each check is sound).

Counter checks, per object, over operations `Op` (one logical increment,
retried under one Idempotency-Key until acknowledged; `value` is the new
count the call returned):
  lost       no two acknowledged increments returned the same value, none
             returned more than the final count, and the final count is at
             least the number acknowledged;
  duplicated the final count is at most acknowledged + unacknowledged
             increments, and re-sending acknowledged keys returns the
             recorded values and changes no count;
  real time  an increment acknowledged before another was first sent
             returned the smaller value (linearizability of a counter whose
             increments return their new value: each value is the
             operation's position in the one serial order).

Commit checks, per object, over the shared database's `object_log` and
`object_snapshots` rows (`Commit`) and the `activations` ledger:
  the log is one unbroken chain of sequences up to the object's head; along
  it, epochs never decrease and commit times never go back; each epoch's
  commits therefore form one time interval, and the intervals of two epochs
  never overlap; every committing epoch has its ledger row, started before
  its first commit.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field


@dataclass
class Op:
    object_name: str
    key: str
    sent: float  # monotonic time of the first attempt
    acked: float | None = None  # monotonic time the acknowledgement was read
    value: int | None = None
    attempts: int = 0

    def acked_by(self, at: float) -> bool:
        """Acknowledged at or before `at` (a fault's time): if not, the operation was in flight then."""
        return self.acked is not None and self.acked <= at


@dataclass(frozen=True)
class Commit:
    object_id: str
    seq: int
    epoch: int
    at: dt.datetime
    kind: str  # "log" or "snapshot"


@dataclass(frozen=True)
class LedgerRow:
    object_id: str
    epoch: int
    worker_id: str
    started_at: dt.datetime
    stopped_at: dt.datetime | None


@dataclass
class Verdict:
    name: str
    ok: bool
    detail: str
    problems: list[str] = field(default_factory=list)


def _by_object(ops: Iterable[Op]) -> dict[str, list[Op]]:
    grouped: dict[str, list[Op]] = defaultdict(list)
    for op in ops:
        grouped[op.object_name].append(op)
    return grouped


def check_lost(ops: Sequence[Op], finals: Mapping[str, int]) -> Verdict:
    problems = []
    for name, group in _by_object(ops).items():
        values = [op.value for op in group if op.value is not None]
        final = finals[name]
        if len(set(values)) != len(values):
            problems.append(f"{name}: {len(values) - len(set(values))} acknowledged values returned twice")
        if values and max(values) > final:
            problems.append(f"{name}: acknowledged value {max(values)} above the final count {final}")
        if final < len(values):
            problems.append(f"{name}: final count {final} below the {len(values)} acknowledged increments")
    acked = sum(op.value is not None for op in ops)
    return Verdict("no acknowledged increment lost", not problems, f"{acked:,} acknowledged increments", problems)


def check_duplicates(
    ops: Sequence[Op], finals: Mapping[str, int], replays: Sequence[tuple[Op, int]], finals_after: Mapping[str, int]
) -> Verdict:
    """`replays`: (acknowledged op, value returned when its key was sent again after the run)."""
    problems = []
    for name, group in _by_object(ops).items():
        acked = sum(op.value is not None for op in group)
        unknown = len(group) - acked
        if finals[name] > acked + unknown:
            problems.append(f"{name}: final count {finals[name]} above {acked} acknowledged + {unknown} unanswered")
    for op, value in replays:
        if value != op.value:
            problems.append(f"{op.object_name} key {op.key}: first answered {op.value}, re-sent answered {value}")
    changed = [name for name in finals if finals_after.get(name) != finals[name]]
    if changed:
        problems.append(f"re-sending acknowledged keys changed the count of {len(changed)} objects, e.g. {changed[0]}")
    detail = f"final counts match; {len(replays):,} acknowledged keys re-sent: same answers, no count changed"
    return Verdict("no increment applied twice", not problems, detail if not problems else "", problems)


def check_real_time_order(ops: Sequence[Op]) -> Verdict:
    """For each object: no increment acknowledged before another was sent may hold the larger value."""
    problems = []
    pairs_checked = 0
    for name, group in _by_object(ops).items():
        acked = sorted((op for op in group if op.value is not None), key=lambda op: op.value, reverse=True)
        pairs_checked += len(acked)
        earliest_ack_above: Op | None = None  # among ops with a larger value, the one acknowledged first
        for op in acked:
            if earliest_ack_above is not None and earliest_ack_above.acked < op.sent:
                problems.append(
                    f"{name}: value {earliest_ack_above.value} acknowledged {op.sent - earliest_ack_above.acked:.3f}"
                    f" s before the increment that got {op.value} was sent"
                )
            if earliest_ack_above is None or op.acked < earliest_ack_above.acked:
                earliest_ack_above = op
    detail = f"{pairs_checked:,} increments on {len(_by_object(ops))} objects checked against real time"
    return Verdict("linearizable (real-time order)", not problems, detail, problems)


def check_commits(
    commits: Sequence[Commit], ledger: Sequence[LedgerRow], heads: Mapping[str, int]
) -> tuple[Verdict, dict[str, int]]:
    """No two activations of one object committed in overlapping intervals; returns the verdict and counts."""
    problems: list[str] = []
    by_object: dict[str, list[Commit]] = defaultdict(list)
    for c in commits:
        by_object[c.object_id].append(c)
    ledger_by_object: dict[str, dict[int, LedgerRow]] = defaultdict(dict)
    for row in ledger:
        ledger_by_object[row.object_id][row.epoch] = row
    epochs_committing = 0
    for object_id, head in heads.items():
        mine = by_object.get(object_id, [])
        log = sorted((c for c in mine if c.kind == "log"), key=lambda c: c.seq)
        if [c.seq for c in log] != list(range(1, head + 1)):
            problems.append(f"{object_id}: log sequences are not 1..{head}")
            continue
        for before, after in zip(log, log[1:]):
            if after.epoch < before.epoch:
                problems.append(f"{object_id}: seq {after.seq} by epoch {after.epoch} after epoch {before.epoch}")
            if after.at < before.at:
                problems.append(f"{object_id}: seq {after.seq} committed before seq {before.seq}")
        epoch_of_seq = {c.seq: c.epoch for c in log}
        for snap in (c for c in mine if c.kind == "snapshot"):
            if epoch_of_seq.get(snap.seq) != snap.epoch:
                problems.append(f"{object_id}: snapshot at seq {snap.seq} by epoch {snap.epoch}, not the log's epoch")
        intervals: dict[int, list[dt.datetime]] = {}
        for c in mine:
            span = intervals.setdefault(c.epoch, [c.at, c.at])
            span[0], span[1] = min(span[0], c.at), max(span[1], c.at)
        ordered = sorted(intervals.items())
        epochs_committing += len(ordered)
        for (e1, (_, last1)), (e2, (first2, _)) in zip(ordered, ordered[1:]):
            if not last1 < first2:
                problems.append(f"{object_id}: epoch {e1} committed until {last1}, after epoch {e2} began at {first2}")
        for epoch, (first, _) in ordered:
            row = ledger_by_object[object_id].get(epoch)
            if row is None:
                problems.append(f"{object_id}: epoch {epoch} committed without an activation row")
            elif row.started_at > first:
                problems.append(f"{object_id}: epoch {epoch} committed at {first}, before its activation started")
    counts = {
        "objects": len(heads),
        "log_records": sum(1 for c in commits if c.kind == "log"),
        "snapshots": sum(1 for c in commits if c.kind == "snapshot"),
        "activations": len(ledger),
        "epochs_that_committed": epochs_committing,
        "ledger_overlaps": _ledger_overlaps(ledger),
        "activations_never_stopped": sum(1 for r in ledger if r.stopped_at is None),
    }
    detail = (
        f"{counts['epochs_that_committed']:,} committing epochs over {counts['objects']} objects, "
        f"{counts['log_records']:,} log records, {counts['snapshots']:,} snapshots: disjoint, in epoch order"
    )
    return Verdict("no overlapping committed activations", not problems, detail, problems), counts


def check_history(
    ops: Sequence[Op],
    finals: Mapping[str, int],
    replays: Sequence[tuple[Op, int]],
    finals_after: Mapping[str, int],
    commits: Sequence[Commit],
    ledger: Sequence[LedgerRow],
    heads: Mapping[str, int],
) -> tuple[list[Verdict], dict[str, int]]:
    """Every verdict on a run's history (lost, doubled, real-time order, committed intervals), and the
    commit counts of `check_commits`."""
    commit_verdict, commit_counts = check_commits(commits, ledger, heads)
    verdicts = [
        check_lost(ops, finals),
        check_duplicates(ops, finals, replays, finals_after),
        check_real_time_order(ops),
        commit_verdict,
    ]
    return verdicts, commit_counts


def _ledger_overlaps(ledger: Sequence[LedgerRow]) -> int:
    """Pairs of consecutive activations whose ledger intervals overlap (a stop recorded late or never).

    Expected for killed or paused owners; what matters is that their commits did not overlap.
    """
    rows: dict[str, list[LedgerRow]] = defaultdict(list)
    for row in ledger:
        rows[row.object_id].append(row)
    overlaps = 0
    for group in rows.values():
        group.sort(key=lambda r: r.epoch)
        for before, after in zip(group, group[1:]):
            if before.stopped_at is None or before.stopped_at > after.started_at:
                overlaps += 1
    return overlaps
