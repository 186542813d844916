"""The object host's drain threads: each drain handed over goes to an idle thread, or a new one.

What `ThreadPoolExecutor.submit` did per drain, without what the host never used: a Future (a
Condition and its lock, taken on start and on the result), a work item, and an idle semaphore
(a Condition in Python) taken on submit and given back after each run. A drain reports nothing
back; the host counts the drains that run under its own lock (ObjectHost._active). Here a
hand-over is one uncontended lock and a put on a SimpleQueue, which an idle thread waits on.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class DrainThreads(Generic[T]):
    """Up to `max_threads` daemon threads, started as needed and kept, each running `run(item)`."""

    def __init__(self, run: Callable[[T], None], max_threads: int, name_prefix: str) -> None:
        self._run = run
        self._max_threads = max_threads
        self._name_prefix = name_prefix
        self._queue: queue.SimpleQueue[T | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0  # threads done with their item and about to wait for the next
        self._threads: list[threading.Thread] = []
        self._stopped = False

    def submit(self, item: T) -> None:
        """Run `item` on an idle thread, else on a new one while fewer than `max_threads` run, else when one is free."""
        with self._lock:
            if self._stopped:
                raise RuntimeError("the drain threads are stopped")
            if self._idle:
                self._idle -= 1
            elif len(self._threads) < self._max_threads:
                thread = threading.Thread(
                    target=self._serve, name=f"{self._name_prefix}_{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
        self._queue.put(item)

    def _serve(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                self._run(item)
            except BaseException:  # the host's drains catch their own; a thread must outlive anything else
                log.exception("a drain thread's work failed")
            with self._lock:
                self._idle += 1

    def shutdown(self, *, wait: bool) -> None:
        """Drop what was handed over and not started, end each thread after its item; wait for them if `wait`."""
        with self._lock:
            self._stopped = True
            threads = list(self._threads)
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass
        for _ in threads:
            self._queue.put(None)
        if wait:
            for thread in threads:
                thread.join()
