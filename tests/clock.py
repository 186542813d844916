"""A clock tests move by hand: alarms and schedules run on it without sleeping."""

from __future__ import annotations

import threading


class FakeClock:
    def __init__(self, now_ms: int = 1_700_000_000_000) -> None:
        self._now = now_ms
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            return self._now

    def advance(self, ms: int) -> int:
        with self._lock:
            self._now += ms
            return self._now

    def set(self, now_ms: int) -> None:
        with self._lock:
            self._now = now_ms
