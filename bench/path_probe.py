"""Run a solo command with time stamps at each stage of a call's path, for bench/breakdown.py.

    PATH_PROBE_DIR=/dir python -m bench.path_probe python -m solo worker

Wraps a few functions of the API and the worker (nothing in solo itself changes) so that
each writes one line `stage key ns thread_cpu_ns thread_id` to `PATH_PROBE_DIR/<pid>.stamps` when it starts or
returns: `key` is a call id or an object id, `ns` the system-wide CLOCK_MONOTONIC
(`time.monotonic_ns()`, comparable across processes and with the client's
`time.perf_counter_ns()` on Linux). One os.write per stamp, a few microseconds.
"""

from __future__ import annotations

import functools
import os
import runpy
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

_fd = -1


def stamp(stage: str, keys: Iterable[str]) -> None:
    now, cpu, thread = time.monotonic_ns(), time.thread_time_ns(), threading.get_native_id()
    os.write(_fd, "".join(f"{stage} {key} {now} {cpu} {thread}\n" for key in keys).encode())


def _around(owner: Any, name: str, before: Callable[..., Iterable[str]] | None, stage: str, after: bool = True) -> None:
    """Stamp `stage`.0 when owner.name starts (keys from `before(*args)`) and `stage`.1 when it returns."""
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        keys = list(before(*args, **kwargs)) if before else []
        stamp(f"{stage}.0", keys)
        result = original(*args, **kwargs)
        if after:
            stamp(f"{stage}.1", keys)
        return result

    setattr(owner, name, wrapper)


def _around_async(owner: Any, name: str, before: Callable[..., Iterable[str]], stage: str) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        keys = list(before(*args, **kwargs))
        stamp(f"{stage}.0", keys)
        result = await original(*args, **kwargs)
        stamp(f"{stage}.1", keys)
        return result

    setattr(owner, name, wrapper)


def install_api() -> None:
    from solo.api import calls, group_enqueue, replies
    from solo.objects.calls import Outcome

    # The handler's call: from the Call being built (request parsed, authenticated, validated) to its outcome.
    _around_async(calls.CallService, "call", lambda self, call, timeout_s: [call.call_id], "api.call")
    # The enqueue round trip (a group's or a lone one's), from the flush's task starting to its answer.
    _around_async(group_enqueue.GroupEnqueue, "_send", lambda self, group: [c.call_id for c, _ in group], "api.enq")

    class StampedOutcome:
        @staticmethod
        def from_payload(raw: bytes) -> Outcome:
            outcome = Outcome.from_payload(raw)
            stamp("api.popped", [outcome.call_id])
            return outcome

    replies.Outcome = StampedOutcome  # type: ignore[misc,assignment]


def install_worker() -> None:
    from solo.objects.coordination.mailbox import Mailbox
    from solo.objects.runtime.instance import ObjectInstance
    from solo.objects.state.store import StateStore
    from solo.workers.host import ObjectHost

    _around(ObjectHost, "_wake", lambda self, ids: ids, "w.wake", after=False)
    _around(Mailbox, "claim_many", lambda self, leases, size: [o for o, _ in leases], "w.claim")
    _around(ObjectHost, "_run_drain", lambda self, entry: [entry.object_id], "w.drain", after=False)
    _around(ObjectInstance, "run_batch", lambda self, calls: [c.call_id for c in calls], "w.run", after=False)
    _around(StateStore, "ship", lambda self, object_id, *a, **k: [object_id], "w.ship")
    _around(
        Mailbox,
        "complete_and_claim",
        lambda self, object_id, lease, calls, outcomes, size: [c.call_id for c in calls],
        "w.complete",
    )


def main() -> None:
    global _fd
    directory = os.environ["PATH_PROBE_DIR"]
    _fd = os.open(os.path.join(directory, f"{os.getpid()}.stamps"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    command = sys.argv[1:]
    module = command.index("-m") + 1
    sys.argv = [command[module], *command[module + 1 :]]
    role = sys.argv[1] if len(sys.argv) > 1 else ""
    if role == "api":
        install_api()
    elif role == "worker":
        install_worker()
    runpy.run_module(command[module], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
