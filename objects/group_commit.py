"""Group commit: items that different threads have ready at the same moment go in one round trip.

A thread calls `GroupCommit.run(item)` and gets its own item's result. If fewer than
`round_trips` round trips are under way, it leads at once: it takes every pending item
(its own, and any that came in meanwhile) and does them all in one call of `run_many`.
A thread that arrives while that many are under way waits; when one of them ends, the
first of the waiting threads leads the next one, with everything that gathered meanwhile.
More than one round trip at a time keeps the connections busy side by side: with one,
every shipment of a process waits for the one before it.
There is no timer: a lone item goes at once, as it would alone, and items gather only
while they would have queued for the connection, the database or the GIL anyway.

`run_many` answers one result per item, in order; an exception in that list is raised
in its own item's thread only. If `run_many` itself raises, every item of the group
raises that exception.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class _Entry(Generic[T, R]):
    __slots__ = ("item", "_asleep", "lead", "result", "error")

    def __init__(self, item: T) -> None:
        self.item = item
        self._asleep: threading.Lock | None = None  # only for an entry that will wait (`will_wait`)
        self.lead = False  # woken to lead the next round trip, not with a result
        self.result: R | None = None
        self.error: BaseException | None = None

    def will_wait(self) -> None:
        """Before the entry is queued: a lock held from now on, which `wait` blocks on until `wake`
        releases it. Cheaper than an Event (a Condition and a lock, and notify_all in Python), which
        a profile showed; a leader, which never waits, makes none."""
        self._asleep = threading.Lock()
        self._asleep.acquire()

    def wait(self) -> None:
        assert self._asleep is not None
        self._asleep.acquire()

    def wake(self) -> None:
        """Once per waiting entry at most."""
        assert self._asleep is not None
        self._asleep.release()


class GroupCommit(Generic[T, R]):
    def __init__(self, run_many: Callable[[Sequence[T]], Sequence[R | BaseException]], round_trips: int = 1) -> None:
        self._run_many = run_many
        self._lock = threading.Lock()
        self._pending: list[_Entry[T, R]] = []
        self._round_trips = round_trips  # at most this many under way at once
        self._leading = 0  # round trips under way (or whose leaders are about to take the pending items)
        self.groups = 0  # round trips made, and the items they carried: for tests and benchmarks
        self.items = 0

    @property
    def waiting(self) -> int:
        """Items queued for the next round trip."""
        with self._lock:
            return len(self._pending)

    def run(self, item: T) -> R:
        entry: _Entry[T, R] = _Entry(item)
        with self._lock:
            lead = self._leading < self._round_trips
            if lead:
                self._leading += 1
            else:
                entry.will_wait()
                self._pending.append(entry)
        if not lead:
            entry.wait()
            if not entry.lead:
                return self._answer(entry)
        self._lead(entry)
        return self._answer(entry)

    def _lead(self, own: _Entry[T, R]) -> None:
        # Every entry leaves `_pending` under the lock, either into a group or as a successor:
        # each is woken exactly once.
        with self._lock:
            group, self._pending = [own, *self._pending], []
        try:
            results = self._run_many([e.item for e in group])
            if len(results) != len(group):
                raise RuntimeError(f"group of {len(group)} items answered {len(results)} results")
            for e, result in zip(group, results, strict=True):
                if isinstance(result, BaseException):
                    e.error = result
                else:
                    e.result = result
        except BaseException as exc:
            for e in group:
                e.error = exc
        finally:
            with self._lock:
                self.groups += 1
                self.items += len(group)
                successor = self._pending.pop(0) if self._pending else None
                if successor is None:
                    self._leading -= 1
            if successor is not None:
                successor.lead = True
                successor.wake()
            for e in group[1:]:  # not the leader's own: nobody waits on it
                e.wake()

    @staticmethod
    def _answer(entry: _Entry[T, R]) -> R:
        if entry.error is not None:
            raise entry.error
        return entry.result  # type: ignore[return-value]  # set whenever error is not
