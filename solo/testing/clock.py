"""A clock moved by hand: objects, alarms and the scheduler run on it without sleeping."""

from __future__ import annotations

import threading
from collections.abc import Callable

from solo.objects.context import wall_clock_ms


class ManualClock:
    """Milliseconds since the epoch, starting at `now_ms` (the wall clock's time by default).

    It moves only when told to (`advance`, `set`); callables given to `on_move` run after
    each move, on the mover's thread (LocalSystem fires the alarms that came due there).
    """

    def __init__(self, now_ms: int | None = None) -> None:
        self._now = wall_clock_ms() if now_ms is None else now_ms
        self._lock = threading.Lock()
        self._listeners: list[Callable[[int], object]] = []

    def __call__(self) -> int:
        with self._lock:
            return self._now

    def now_ms(self) -> int:
        return self()

    def advance(self, ms: int = 0, *, seconds: float = 0) -> int:
        """Move forward by `ms` plus `seconds`; returns the new time."""
        step = ms + round(seconds * 1000)
        if step < 0:
            raise ValueError("a clock only moves forward; use set() to go back")
        with self._lock:
            self._now += step
            now = self._now
        self._moved(now)
        return now

    def set(self, now_ms: int) -> None:
        with self._lock:
            self._now = now_ms
        self._moved(now_ms)

    def on_move(self, listener: Callable[[int], object]) -> None:
        self._listeners.append(listener)

    def _moved(self, now_ms: int) -> None:
        for listener in self._listeners:
            listener(now_ms)
