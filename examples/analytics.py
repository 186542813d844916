"""Metrics for one tenant: counters, gauges and measurements, aggregated in memory and flushed to SQL.

Recording a value writes nothing but, when it is the first value of an empty
buffer, a one-shot schedule: `increment`, `track` and `gauge` add to buffers in
memory, which are written to SQL FLUSH_EVERY_S seconds after the first value
came in, whenever the buffer holds more than MAX_PENDING entries, on an explicit
`flush()`, and in `on_stop()`, before the object is evicted or its worker drains.
With nothing buffered there is no schedule, so an idle object sleeps. That is the
trade this object makes on purpose: no database write per event, at the price that
values recorded since the last flush (gauges too) live only in memory and are lost
if the object's worker dies (a crash skips on_stop). Flushed values are durable.

Each metric is kept in minute, hour and day buckets of sum, count, min and max;
the day buckets are the daily aggregates. Minute buckets are kept for
MINUTE_BUCKETS_KEPT_MS, hour buckets for HOUR_BUCKETS_KEPT_MS, day buckets for good.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any, Literal

from solo import DurableObject, UserError, rpc

FLUSH_EVERY_S = 10
MAX_PENDING = 200  # distinct (metric, minute) entries held in memory before a flush
MAX_NAME_CHARS = 200
MAX_POINTS = 10_000  # most buckets one get_metrics may span
DASHBOARD_DAYS = 7
GRANULARITY_MS = {"minute": 60_000, "hour": 3_600_000, "day": 86_400_000}
LAST_EPOCH_MS = 253_402_300_799_999  # the end of the year 9999
# The largest value recorded, either sign: no count of values a bucket can gather sums past the
# range of a float (1.8e308), which would make the sum infinite and the answers that hold it not JSON.
MAX_MAGNITUDE = 1e18
MINUTE_BUCKETS_KEPT_MS = 2 * 86_400_000
HOUR_BUCKETS_KEPT_MS = 35 * 86_400_000

Granularity = Literal["minute", "hour", "day"]

_ADD_TO_BUCKET = """
    INSERT INTO buckets (name, granularity, start_ms, sum_value, count, min_value, max_value)
    VALUES (?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (granularity, name, start_ms) DO UPDATE SET
        sum_value = sum_value + excluded.sum_value,
        count = count + excluded.count,
        min_value = MIN(min_value, excluded.min_value),
        max_value = MAX(max_value, excluded.max_value)
"""
_SET_GAUGE = """
    INSERT INTO gauges (name, value, at_ms) VALUES (?, ?, ?)
    ON CONFLICT (name) DO UPDATE SET value = excluded.value, at_ms = excluded.at_ms
    WHERE excluded.at_ms >= gauges.at_ms
"""


@dataclass
class Aggregate:
    """Sum, count, min and max of the values of one metric in one bucket."""

    sum: float
    count: int
    min: float
    max: float

    @classmethod
    def of(cls, value: float) -> Aggregate:
        return cls(value, 1, value, value)

    def merge(self, other: Aggregate) -> None:
        self.sum += other.sum
        self.count += other.count
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    def describe(self) -> dict[str, Any]:
        return {"sum": self.sum, "count": self.count, "min": self.min, "max": self.max, "avg": self.sum / self.count}


def _bucket_start(ms: int, granularity: str) -> int:
    return ms - ms % GRANULARITY_MS[granularity]


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="minutes").replace("+00:00", "Z")


def _check_name(name: str) -> None:
    if not name or len(name) > MAX_NAME_CHARS:
        raise UserError(f"a metric name has 1 to {MAX_NAME_CHARS} characters", code="invalid_name")


def _value(value: float) -> float:
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not abs(number) <= MAX_MAGNITUDE:  # NaN too
        raise UserError(
            f"value must be a number from -{MAX_MAGNITUDE} to {MAX_MAGNITUDE}, not {value!r}", code="invalid_value"
        )
    return number


def _epoch_ms(when: int | str, what: str) -> int:
    """Epoch milliseconds, or an ISO-8601 time (naive means UTC)."""
    problem = UserError(
        f"{what} must be epoch milliseconds or ISO-8601 from 1970 on, not {when!r}", code="invalid_time"
    )
    if isinstance(when, int):
        ms = when
    else:
        try:
            parsed = dt.datetime.fromisoformat(when)
        except ValueError:
            raise problem from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        ms = int(parsed.timestamp() * 1000)
    if not 0 <= ms <= LAST_EPOCH_MS:
        raise problem
    return ms


class Analytics(DurableObject):
    """Counters, gauges and measurements of one tenant, bucketed by minute, hour and day.

    Recent values are buffered in memory and flushed to SQL periodically; reads
    combine what is flushed with what is still buffered.
    """

    migrations = [
        """
        CREATE TABLE buckets (
            name TEXT NOT NULL,
            granularity TEXT NOT NULL,      -- minute, hour or day
            start_ms INTEGER NOT NULL,
            sum_value REAL NOT NULL,
            count INTEGER NOT NULL,
            min_value REAL NOT NULL,
            max_value REAL NOT NULL,
            PRIMARY KEY (granularity, name, start_ms)
        ) WITHOUT ROWID;
        CREATE TABLE gauges (name TEXT PRIMARY KEY, value REAL NOT NULL, at_ms INTEGER NOT NULL);
        """
    ]

    def on_start(self) -> None:
        self.pending: dict[tuple[str, int], Aggregate] = {}  # (metric, minute start) -> values since the last flush
        self.pending_gauges: dict[str, tuple[float, int]] = {}  # metric -> (value, at_ms)
        # Memory starts empty: nothing to flush, so no flush is scheduled (a crash may have left one).
        self.cancel_schedule("flush")
        self.flush_scheduled = False

    def on_stop(self) -> None:
        """Before a graceful eviction or drain: what is buffered is written, not lost."""
        if self.pending or self.pending_gauges:
            self.flush()

    # -- recording (memory only) ----------------------------------------------------------

    @rpc
    def increment(self, name: str, value: float = 1) -> None:
        """Add `value` to the counter `name`."""
        self._add(name, value)

    @rpc
    def track(self, name: str, value: float) -> None:
        """Record one measurement of `name` (a duration, a size): its sum, count, min and max are kept."""
        self._add(name, value)

    @rpc
    def gauge(self, name: str, value: float) -> None:
        """Set the current value of the gauge `name`; the latest value wins."""
        _check_name(name)
        self.pending_gauges[name] = (_value(value), self.ctx.now_ms())
        self._flush_later()

    def _add(self, name: str, value: float) -> None:
        _check_name(name)
        number = _value(value)
        _merge_into(self.pending, (name, _bucket_start(self.ctx.now_ms(), "minute")), Aggregate.of(number))
        if len(self.pending) > MAX_PENDING:
            self.flush()
        else:
            self._flush_later()

    def _flush_later(self) -> None:
        """The first value of an empty buffer: flush in FLUSH_EVERY_S seconds (one write per flush, not per value)."""
        if not self.flush_scheduled:
            self.schedule("flush", "flush", at=self.ctx.now_ms() + FLUSH_EVERY_S * 1000)
            self.flush_scheduled = True

    # -- flushing ---------------------------------------------------------------------

    @rpc
    def flush(self) -> dict[str, int]:
        """Write the buffered values to SQL (also run FLUSH_EVERY_S seconds after a value comes into an empty
        buffer); answers what was written."""
        if self.flush_scheduled:  # flushed now: the schedule has nothing left to do (or is this very fire)
            self.cancel_schedule("flush")
            self.flush_scheduled = False
        self.sql.executemany(
            _ADD_TO_BUCKET,
            [
                (name, granularity, _bucket_start(minute, granularity), agg.sum, agg.count, agg.min, agg.max)
                for (name, minute), agg in self.pending.items()
                for granularity in GRANULARITY_MS
            ],
        )
        self.sql.executemany(_SET_GAUGE, [(name, value, at_ms) for name, (value, at_ms) in self.pending_gauges.items()])
        written = {"buckets": len(self.pending), "gauges": len(self.pending_gauges)}
        self.pending, self.pending_gauges = {}, {}
        self._forget_old_buckets()
        return written

    def _forget_old_buckets(self) -> None:
        now = self.ctx.now_ms()
        for granularity, kept_ms in (("minute", MINUTE_BUCKETS_KEPT_MS), ("hour", HOUR_BUCKETS_KEPT_MS)):
            self.sql.execute("DELETE FROM buckets WHERE granularity = ? AND start_ms < ?", (granularity, now - kept_ms))

    # -- reading (flushed values plus the buffer) --------------------------------------------

    @rpc
    def get_metrics(
        self,
        name: str,
        start: int | str | None = None,
        end: int | str | None = None,
        granularity: Granularity = "hour",
    ) -> dict[str, Any]:
        """The buckets of `name` from `start` to `end` (epoch ms or ISO-8601), oldest first; empty buckets left out.

        `end` defaults to now, `start` to DASHBOARD_DAYS days before `end`."""
        _check_name(name)
        end_ms = self.ctx.now_ms() if end is None else _epoch_ms(end, "end")
        default_start = max(0, end_ms - DASHBOARD_DAYS * GRANULARITY_MS["day"])
        start_ms = default_start if start is None else _epoch_ms(start, "start")
        first = _bucket_start(start_ms, granularity)
        last = _bucket_start(end_ms, granularity)
        if last < first:
            raise UserError("end is before start", code="invalid_range")
        if (last - first) // GRANULARITY_MS[granularity] >= MAX_POINTS:
            raise UserError(f"the range spans more than {MAX_POINTS} {granularity} buckets", code="invalid_range")
        buckets = self._flushed(granularity, first, last, name)
        for (pending_name, minute), aggregate in self.pending.items():
            bucket = _bucket_start(minute, granularity)
            if pending_name == name and first <= bucket <= last:
                _merge_into(buckets, (name, bucket), aggregate)
        points = [
            {"start": _iso(bucket), "start_ms": bucket, **aggregate.describe()}
            for (_, bucket), aggregate in sorted(buckets.items())
        ]
        return {"name": name, "granularity": granularity, "points": points}

    @rpc
    def get_dashboard(self) -> dict[str, Any]:
        """Today's totals per metric, the gauges, the last days' totals, and how much is not flushed yet."""
        today = _bucket_start(self.ctx.now_ms(), "day")
        days = self._flushed("day", today - (DASHBOARD_DAYS - 1) * GRANULARITY_MS["day"], today)
        for (name, minute), aggregate in self.pending.items():
            _merge_into(days, (name, _bucket_start(minute, "day")), aggregate)
        by_day: dict[int, dict[str, Any]] = {}
        for (name, day), aggregate in sorted(days.items()):
            by_day.setdefault(day, {})[name] = aggregate.describe()
        gauges = {row["name"]: (row["value"], row["at_ms"]) for row in self.sql.execute("SELECT * FROM gauges")}
        gauges.update(self.pending_gauges)
        return {
            "today": by_day.get(today, {}),
            "days": [{"day": _iso(day)[:10], "metrics": by_day[day]} for day in sorted(by_day, reverse=True)],
            "gauges": {name: {"value": value, "at_ms": at_ms} for name, (value, at_ms) in sorted(gauges.items())},
            "unflushed": {"buckets": len(self.pending), "gauges": len(self.pending_gauges)},
        }

    def _flushed(
        self, granularity: str, first: int, last: int, name: str | None = None
    ) -> dict[tuple[str, int], Aggregate]:
        rows = self.sql.execute(
            "SELECT name, start_ms, sum_value, count, min_value, max_value FROM buckets"
            " WHERE granularity = ? AND start_ms BETWEEN ? AND ? AND (? IS NULL OR name = ?)",
            (granularity, first, last, name, name),
        )
        return {(row[0], row[1]): Aggregate(row[2], row[3], row[4], row[5]) for row in rows}


def _merge_into(buckets: dict[tuple[str, int], Aggregate], key: tuple[str, int], aggregate: Aggregate) -> None:
    if key in buckets:
        buckets[key].merge(aggregate)
    else:
        buckets[key] = Aggregate(aggregate.sum, aggregate.count, aggregate.min, aggregate.max)
