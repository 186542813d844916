"""Support for testing solo and applications built on it.

`LocalSystem` (and `AsyncLocalSystem`) run a whole solo inside the test process, on
fakes shipped with solo: test your own objects with it (README, "Testing your objects").
`ManualClock` is the clock it runs on. `solo.testing.cluster` starts a real solo as
processes (solo's own end-to-end tests and benchmarks).
"""

from solo.testing.clock import ManualClock
from solo.testing.local import AsyncLocalSystem, LocalSystem

__all__ = ["AsyncLocalSystem", "LocalSystem", "ManualClock"]
