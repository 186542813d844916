"""The scheduler's time index in Redis: alarms due soon, by due time.

Redis holds only what is due within the horizon (``SOLO_ALARM_HORIZON_S``);
the shared ``alarms`` table holds everything and is the truth. Entries get
here two ways:
- the owner announces an object's changed alarms right after the commit that
  changed them is shipped (``announce``);
- the scheduler refills from the shared table every few seconds and after it
  takes over, adding only what is missing (``add_missing``), which also
  repairs everything a Redis restart lost.
A stale entry is harmless: a fire for an alarm that is no longer due is a no-op
at the object, whose own table decides.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import redis
import redis.asyncio
from redis.client import Pipeline

from solo.objects.coordination import scripts
from solo.objects.coordination.keys import Keys

# What ZRANGE/ZRANGEBYSCORE ... WITHSCORES answer on solo's clients (redis-py types every shape at once).
ScoredMembers = list[tuple[bytes | str, float]]


@dataclass(frozen=True)
class DueAlarm:
    object_id: str
    class_name: str
    object_name: str
    name: str
    due_ms: int

    @property
    def member(self) -> str:
        return json.dumps([self.object_id, self.class_name, self.object_name, self.name], separators=(",", ":"))

    @classmethod
    def parse(cls, member: str | bytes, score: float) -> DueAlarm:
        object_id, class_name, object_name, name = json.loads(member)
        return cls(object_id, class_name, object_name, name, int(score))


def announcement(
    object_id: str,
    class_name: str,
    object_name: str,
    due: Sequence[tuple[str, int | None]],
    now_ms: int,
    horizon_ms: int,
) -> tuple[dict[str, int], list[str]]:
    """(members to set to a due time, members to remove) for one object's alarms.

    `due` holds (alarm name, due ms, or None when it has no pending fire); a later
    entry for a name wins. Alarms due beyond the horizon are removed: the
    scheduler's refill brings them back in time.
    """
    latest = {DueAlarm(object_id, class_name, object_name, name, 0).member: due_ms for name, due_ms in due}
    add = {m: t for m, t in latest.items() if t is not None and t <= now_ms + horizon_ms}
    return add, [m for m in latest if m not in add]


def _queue_announcement(pipe: Any, key: str, changes: tuple[dict[str, int], list[str]]) -> bool:
    """Queue an announcement's commands on a pipeline (sync or async); False if there are none."""
    add, drop = changes
    if add:
        pipe.zadd(key, add)
    if drop:
        pipe.zrem(key, *drop)
    return bool(add or drop)


class AlarmQueue:
    def __init__(self, client: redis.Redis, keys: Keys, horizon_ms: int) -> None:
        self._redis = client
        self._key = keys.alarms_due
        self.horizon_ms = horizon_ms
        self._postpone = client.register_script(scripts.source("postpone"))
        self._due_and_next = client.register_script(scripts.source("due_and_next"))

    def announce(
        self, object_id: str, class_name: str, object_name: str, due: Sequence[tuple[str, int | None]], now_ms: int
    ) -> None:
        """Set each named alarm's due time; drop those with none (done, deleted, dropped) or past the horizon."""
        pipe = self._redis.pipeline(transaction=False)
        if _queue_announcement(
            pipe, self._key, announcement(object_id, class_name, object_name, due, now_ms, self.horizon_ms)
        ):
            pipe.execute()

    def add_missing(self, alarms: Iterable[DueAlarm]) -> int:
        """Add alarms Redis does not know (after a restart or a lost announcement); returns how many."""
        mapping = {a.member: a.due_ms for a in alarms}
        if not mapping:
            return 0
        added = 0
        members = list(mapping.items())
        for start in range(0, len(members), 1000):
            count = self._redis.zadd(self._key, dict(members[start : start + 1000]), nx=True)
            assert count is not None  # only ZADD ... INCR answers nil
            added += int(count)
        return added

    def due(self, now_ms: int, limit: int) -> list[DueAlarm]:
        entries = cast(
            ScoredMembers, self._redis.zrangebyscore(self._key, "-inf", now_ms, start=0, num=limit, withscores=True)
        )
        return [DueAlarm.parse(member, score) for member, score in entries]

    def due_and_next(self, now_ms: int, limit: int) -> tuple[list[DueAlarm], int | None]:
        """Up to `limit` entries due by `now_ms`, and the due time of the first one not yet due (None if
        there is none), in one round trip. Only what is due comes back, with one score: a pass costs
        the same whether 1 or 100,000 alarms are waiting within the horizon."""
        due, after = cast(list[list[bytes | str]], self._due_and_next(keys=[self._key], args=[now_ms, limit]))
        # A script's reply is flat, scores as strings: member, score, member, score, ...
        alarms = [DueAlarm.parse(due[i], float(due[i + 1])) for i in range(0, len(due), 2)]
        return alarms, int(float(after[1])) if after else None

    def postpone(self, alarms: Sequence[DueAlarm], until_ms: int, pipe: Pipeline | None = None) -> None:
        """About to dispatch: look again only at `until_ms`, unless the owner announces a change.

        Called before the fires are sent, so that the owner's announcement after running one
        is never overwritten by this; entries the owner changed meanwhile are left alone.
        With `pipe`, queued on it (ahead of the fires, in the same round trip) instead of run now."""
        if not alarms:
            return
        args: list[str | int] = [until_ms]
        for alarm in alarms:
            args += [alarm.member, alarm.due_ms]
        self._postpone(keys=[self._key], args=args, client=pipe)

    def forget(self, alarms: Sequence[DueAlarm]) -> None:
        """Take entries out of the time index (alarms nothing can fire: orphaned)."""
        if alarms:
            self._redis.zrem(self._key, *[a.member for a in alarms])

    def forget_object(self, object_id: str, class_name: str, object_name: str, names: Iterable[str]) -> None:
        members = [DueAlarm(object_id, class_name, object_name, n, 0).member for n in names]
        if members:
            self._redis.zrem(self._key, *members)

    def size(self) -> int:
        return int(self._redis.zcard(self._key))


class AsyncAlarmQueue:
    """The announcing side for asyncio callers (the HTTP API, after an operator's action)."""

    def __init__(self, client: redis.asyncio.Redis, keys: Keys, horizon_ms: int) -> None:
        self._redis = client
        self._key = keys.alarms_due
        self.horizon_ms = horizon_ms

    async def announce(
        self, object_id: str, class_name: str, object_name: str, due: Sequence[tuple[str, int | None]], now_ms: int
    ) -> None:
        """As AlarmQueue.announce."""
        pipe = self._redis.pipeline(transaction=False)
        if _queue_announcement(
            pipe, self._key, announcement(object_id, class_name, object_name, due, now_ms, self.horizon_ms)
        ):
            await pipe.execute()
