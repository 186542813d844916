"""When a schedule's occurrences fall: one-shot, every N seconds, or a cron expression.

All times are epoch milliseconds, UTC. Cron expressions are parsed by
croniter (five fields, or six with seconds last); solo never parses cron itself.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from croniter import croniter

from solo.objects.errors import InvalidSchedule


def to_epoch_ms(when: dt.datetime | int | float, what: str = "time") -> int:
    """A datetime (naive means UTC) or epoch milliseconds, as epoch milliseconds."""
    if isinstance(when, bool) or not isinstance(when, (dt.datetime, int, float)):
        raise InvalidSchedule(f"{what} must be a datetime or epoch milliseconds, not {type(when).__name__}")
    if isinstance(when, dt.datetime):
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        return int(when.timestamp() * 1000)
    if when != when or when in (float("inf"), float("-inf")) or when < 0:
        raise InvalidSchedule(f"{what} must be a non-negative number of epoch milliseconds, not {when!r}")
    return int(when)


def _cron_after(cron: str, t_ms: int) -> int:
    """The first occurrence of `cron` strictly after `t_ms` (a cron schedule always has one)."""
    return int(croniter(cron, t_ms / 1000).get_next(float) * 1000)


@dataclass(frozen=True)
class Recurrence:
    """Occurrences of a schedule: at `start_ms` only, or every `every_ms` from `start_ms`, or per `cron`."""

    start_ms: int
    every_ms: int | None = None
    cron: str | None = None

    @classmethod
    def build(cls, now_ms: int, at_ms: int | None, every_s: float | None, cron: str | None) -> Recurrence:
        if every_s is not None and cron is not None:
            raise InvalidSchedule("give every_s or cron, not both")
        if at_ms is None and every_s is None and cron is None:
            raise InvalidSchedule("give at, every_s or cron")
        if cron is not None:
            if at_ms is not None:
                raise InvalidSchedule("a cron schedule takes no 'at': its expression says when")
            if not isinstance(cron, str) or not croniter.is_valid(cron):
                raise InvalidSchedule(f"not a valid cron expression: {cron!r}")
            return cls(start_ms=now_ms, cron=cron)
        if every_s is not None:
            if isinstance(every_s, bool) or not isinstance(every_s, (int, float)) or not every_s >= 0.001:
                raise InvalidSchedule(f"every_s must be a number of seconds of at least 0.001, not {every_s!r}")
            every_ms = int(round(every_s * 1000))
            # Without 'at', the first occurrence is one interval from now.
            return cls(start_ms=at_ms if at_ms is not None else now_ms + every_ms, every_ms=every_ms)
        assert at_ms is not None
        return cls(start_ms=at_ms)

    @property
    def recurring(self) -> bool:
        return self.every_ms is not None or self.cron is not None

    def first(self) -> int:
        """The first occurrence."""
        if self.cron is not None:
            return _cron_after(self.cron, self.start_ms)
        return self.start_ms

    def after(self, t_ms: int) -> int | None:
        """The first occurrence strictly after `t_ms` (None for a one-shot past its time)."""
        if self.cron is not None:
            return _cron_after(self.cron, t_ms)
        if self.every_ms is None:
            return self.start_ms if self.start_ms > t_ms else None
        if t_ms < self.start_ms:
            return self.start_ms
        return self.start_ms + ((t_ms - self.start_ms) // self.every_ms + 1) * self.every_ms

    def latest(self, t_ms: int, since_ms: int) -> int:
        """The last occurrence at or before `t_ms`, given that `since_ms` is one and is at or before `t_ms`."""
        if self.every_ms is not None:  # since_ms may be later than the grid (an operator's fire-now)
            return max(self.start_ms + ((t_ms - self.start_ms) // self.every_ms) * self.every_ms, since_ms)
        if self.cron is not None:
            found = int(croniter(self.cron, (t_ms + 1) / 1000).get_prev(float) * 1000)
            return max(found, since_ms)
        return since_ms

    def describe(self) -> str:
        if self.cron is not None:
            return f"cron {self.cron}"
        if self.every_ms is not None:
            return f"every {self.every_ms / 1000:g}s"
        return "once"
