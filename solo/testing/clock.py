"""A clock moved by hand: objects, alarms and the scheduler run on it without sleeping."""

from __future__ import annotations

import threading
from collections.abc import Callable

from solo.objects.context import wall_clock_ms


class ManualClock:
    """Milliseconds since the epoch, starting at `now_ms` (the wall clock's time by default).

    It moves only when told to (`advance`, `set`). A clock driven by a system (`drive`; LocalSystem
    does it) hands each move forward to it, which moves the clock through every moment an alarm or
    schedule is due, firing them there, and returns once they have run.
    """

    def __init__(self, now_ms: int | None = None) -> None:
        self._now = wall_clock_ms() if now_ms is None else now_ms
        self._lock = threading.Lock()
        self._driver: Callable[[int], object] | None = None

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
        target = self() + step
        self._go(target)
        return target

    def set(self, now_ms: int) -> None:
        """Move to `now_ms`; backwards too (nothing fires then)."""
        self._go(now_ms)

    def move_to(self, now_ms: int) -> None:
        """Set the time and do nothing else (what a driver moves the clock with)."""
        with self._lock:
            self._now = now_ms

    def drive(self, driver: Callable[[int], object] | None) -> None:
        """Hand moves forward to `driver(target_ms)` from now on (None: moves only set the time)."""
        self._driver = driver

    def _go(self, target_ms: int) -> None:
        if self._driver is None or target_ms <= self():
            self.move_to(target_ms)
        else:
            self._driver(target_ms)
