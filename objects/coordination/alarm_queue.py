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

The leading scheduler sleeps until its next look (the first entry's due time, or
at most SOLO_SCHEDULER_MAX_SLEEP_MS), which each pass records in Redis. An
announcement that adds an alarm due before that look publishes a wake-up on a
channel the leader listens on (``Wakeups``), in the same script as the change
(docs/adr/0018-scheduler-woken-by-announcements.md). A lost wake-up (Redis
restarted, the leader's connection dropped) delays an alarm by at most the
longest sleep.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import cast

import redis
import redis.asyncio
from redis.client import Pipeline, PubSub

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


def announce_args(channel: str, changes: tuple[dict[str, int], list[str]]) -> list[str | int]:
    """announce.lua's arguments for an announcement's changes."""
    add, drop = changes
    args: list[str | int] = [channel, len(add)]
    for member, due_ms in add.items():
        args += [due_ms, member]
    return args + drop


class AlarmQueue:
    def __init__(self, client: redis.Redis, keys: Keys, horizon_ms: int) -> None:
        self._redis = client
        self._key = keys.alarms_due
        self._look_key = keys.scheduler_look
        self._channel = keys.scheduler_wake
        self.horizon_ms = horizon_ms
        self._announce = client.register_script(scripts.source("announce"))
        self._postpone = client.register_script(scripts.source("postpone"))
        self._due_and_next = client.register_script(scripts.source("due_and_next"))

    def announce(
        self, object_id: str, class_name: str, object_name: str, due: Sequence[tuple[str, int | None]], now_ms: int
    ) -> bool:
        """Set each named alarm's due time; drop those with none (done, deleted, dropped) or past the horizon.

        One round trip, which wakes the leading scheduler if an alarm is due before its next look;
        returns whether it did."""
        add, drop = announcement(object_id, class_name, object_name, due, now_ms, self.horizon_ms)
        if not add:  # only removals (a fire ran, an alarm was deleted): nothing comes due sooner
            if drop:
                self._redis.zrem(self._key, *drop)
            return False
        return bool(self._announce(keys=[self._key, self._look_key], args=announce_args(self._channel, (add, drop))))

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

    def due_and_next(
        self, now_ms: int, limit: int, look_by_ms: int, look_ttl_ms: int
    ) -> tuple[list[DueAlarm], int | None]:
        """Up to `limit` entries due by `now_ms`, and the due time of the first one not yet due (None if
        there is none), in one round trip. Only what is due comes back, with one score: a pass costs
        the same whether 1 or 100,000 alarms are waiting within the horizon.

        Records the caller's next look, that due time or `look_by_ms` if sooner (for `look_ttl_ms`):
        from then on, an announcement of an alarm due before it wakes the caller."""
        due, after = cast(
            list[list[bytes | str]],
            self._due_and_next(keys=[self._key, self._look_key], args=[now_ms, limit, look_by_ms, look_ttl_ms]),
        )
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
        self._look_key = keys.scheduler_look
        self._channel = keys.scheduler_wake
        self.horizon_ms = horizon_ms
        self._announce = client.register_script(scripts.source("announce"))

    async def announce(
        self, object_id: str, class_name: str, object_name: str, due: Sequence[tuple[str, int | None]], now_ms: int
    ) -> bool:
        """As AlarmQueue.announce."""
        add, drop = announcement(object_id, class_name, object_name, due, now_ms, self.horizon_ms)
        if not add:
            if drop:
                await self._redis.zrem(self._key, *drop)
            return False
        args = announce_args(self._channel, (add, drop))
        return bool(await self._announce(keys=[self._key, self._look_key], args=args))


class Wakeups:
    """The leading scheduler's end of the wake channel: a subscription it waits on between passes.

    Subscribed (and confirmed) before the pass that records the next look, so no wake-up sent
    after that pass's read is missed while the connection lives. A wake-up lost anyway (the
    connection dropped and was made again) costs at most the sleep it would have cut short;
    a resubscription is treated as a wake-up, so the pass after it reads the index at once.
    """

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._redis = client
        self._channel = keys.scheduler_wake
        self._pubsub: PubSub | None = None

    def listen(self, timeout_s: float = 5.0) -> None:
        """Subscribe, if not yet, and wait for Redis to confirm it."""
        if self._pubsub is not None:
            return
        pubsub = self._redis.pubsub()  # type: ignore[no-untyped-call]
        try:
            pubsub.subscribe(self._channel)
            deadline = time.monotonic() + timeout_s
            while (message := pubsub.get_message(timeout=max(0.0, deadline - time.monotonic()))) is None or (
                message["type"] != "subscribe"
            ):
                if time.monotonic() >= deadline:
                    raise redis.TimeoutError("the scheduler's wake channel was not confirmed")
        except BaseException:
            pubsub.close()
            raise
        self._pubsub = pubsub

    def wait(self, timeout_s: float) -> bool:
        """Until a wake-up comes or `timeout_s` passes; True if woken. Takes every wake-up waiting."""
        pubsub = self._pubsub
        assert pubsub is not None, "listen() first"
        deadline = time.monotonic() + timeout_s
        woken = False
        while True:
            message = pubsub.get_message(timeout=0.0 if woken else max(0.0, deadline - time.monotonic()))
            if message is None:
                if woken or time.monotonic() >= deadline:
                    return woken
            elif message["type"] in ("message", "subscribe"):  # subscribe: made again, wake-ups may be lost
                woken = True

    def close(self) -> None:
        """Unsubscribe (its connection is closed): a scheduler that does not lead hears nothing."""
        if self._pubsub is not None:
            pubsub, self._pubsub = self._pubsub, None
            try:
                pubsub.close()
            except redis.RedisError:
                pass  # a dead connection: nothing to unsubscribe from

    def wake(self) -> None:
        """Wake the listener (the scheduler stopping its own wait)."""
        self._redis.publish(self._channel, "stop")
