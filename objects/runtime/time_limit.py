"""The call time limit: user code that runs past SOLO_CALL_TIME_LIMIT_S is interrupted.

Two mechanisms, because user code runs in two places:

- SQL: the object's connection has a progress handler (instance.py) that makes SQLite
  abandon a statement once the running call's deadline has passed;
- Python: a watchdog thread raises `CallInterrupted` asynchronously in a thread whose
  call is past its deadline (CPython's `PyThreadState_SetAsyncExc`, as Dramatiq's
  time-limit middleware does). It lands at the thread's next bytecode, so it ends a
  `while True: pass` but not a call blocked inside C code.

A call still running `stuck_after_s` past its deadline (after the interrupt) is stuck
where nothing can reach it: `stuck()` names it, and the worker reports it and exits
so that its supervisor restarts it (workers/host.py).

The interrupt can only land inside `limit()`: leaving it clears the thread's entry
under the lock the watchdog holds while interrupting, and cancels an interrupt that
was sent but not yet delivered.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from solo.objects.errors import CallInterrupted

log = logging.getLogger(__name__)

WATCH_INTERVAL_S = 0.05
# An interrupt can be swallowed (say, raised inside an SQLite callback, which discards it):
# until the call ends, it is sent again this often.
RESEND_S = 1.0


@dataclass
class Running:
    """One thread's call under the limit."""

    what: str  # "Class/name.method" for reports
    deadline: float  # monotonic seconds
    interrupted_at: float | None = None  # when the last interrupt was sent
    waiting: bool = False  # on another object's reply: that wait has a timeout of its own

    @property
    def interrupted(self) -> bool:
        return self.interrupted_at is not None


def _raise_in_thread(thread_id: int, exception: type[BaseException] | None) -> None:
    """Schedule `exception` in the thread (None cancels one not yet delivered)."""
    target = ctypes.py_object(exception) if exception is not None else None
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), target)


class CallTimer:
    def __init__(
        self, limit_s: float, *, stuck_after_s: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit_s = limit_s
        self.stuck_after_s = stuck_after_s
        self.clock = clock
        self._running: dict[int, Running] = {}
        self._lock = threading.Lock()

    def limit(self, what: str) -> _Limit:
        """Around user code: past the deadline, it is interrupted with CallInterrupted."""
        return _Limit(self, what)

    def _enter(self, what: str) -> tuple[int, Running]:
        thread_id = threading.get_ident()
        running = Running(what, self.clock() + self.limit_s)
        with self._lock:
            self._running[thread_id] = running
        return thread_id, running

    def _leave(self, thread_id: int, running: Running) -> None:
        with self._lock:
            del self._running[thread_id]
            if running.interrupted:
                _raise_in_thread(thread_id, None)  # sent but maybe not delivered: it must not land later

    def expired(self, running: Running | None) -> bool:
        return running is not None and self.clock() > running.deadline

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Around a wait on another object: the wait does not count against the calling call."""
        with self._lock:
            running = self._running.get(threading.get_ident())
            if running is not None:
                running.waiting = True
        started = self.clock()
        try:
            yield
        finally:
            if running is not None:
                with self._lock:
                    running.deadline += self.clock() - started
                    running.waiting = False

    def watch(self, stopping: threading.Event) -> None:
        """The watchdog: interrupt every call past its deadline, until `stopping` is set."""
        while not stopping.wait(WATCH_INTERVAL_S):
            self.interrupt_expired()

    def interrupt_expired(self) -> int:
        now = self.clock()
        sent = 0
        with self._lock:
            for thread_id, running in self._running.items():
                if now <= running.deadline or running.waiting:
                    continue
                if running.interrupted_at is None or now - running.interrupted_at >= RESEND_S:
                    running.interrupted_at = now
                    _raise_in_thread(thread_id, CallInterrupted)
                    sent += 1
        return sent

    def stuck(self) -> list[str]:
        """Calls that did not end `stuck_after_s` after their deadline: interrupting them failed."""
        cutoff = self.clock() - self.stuck_after_s
        with self._lock:
            return [r.what for r in self._running.values() if r.interrupted and r.deadline < cutoff]


class _Limit:
    """The context manager `CallTimer.limit` returns: a class, as it runs for every call (a generator costs more)."""

    __slots__ = ("_timer", "_what", "_thread_id", "_running")

    def __init__(self, timer: CallTimer, what: str) -> None:
        self._timer = timer
        self._what = what

    def __enter__(self) -> Running:
        self._thread_id, self._running = self._timer._enter(self._what)
        return self._running

    def __exit__(self, *exc_info: object) -> None:
        self._timer._leave(self._thread_id, self._running)
