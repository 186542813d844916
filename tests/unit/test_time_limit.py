"""The call time limit and poisoned calls, on one object instance (no services).

A call that runs past its limit is interrupted, fails with `time_limit_exceeded`,
changes nothing, and the object serves the next call. A call whose workers kept
dying while running it is answered `poisoned` without running.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import replace

import pytest

from solo.objects.calls import Call
from solo.objects.errors import StartFailed
from solo.objects.naming import new_call_id, object_id
from solo.objects.runtime.instance import ObjectInstance
from solo.objects.runtime.time_limit import CallTimer
from tests.objects import Hazard

LIMIT_S = 0.3


@pytest.fixture
def timer():
    timer = CallTimer(LIMIT_S, stuck_after_s=60)
    stopping = threading.Event()
    watchdog = threading.Thread(target=timer.watch, args=(stopping,), daemon=True)
    watchdog.start()
    yield timer
    stopping.set()
    watchdog.join()


def unhydrated(cls: type, tmp_path, timer: CallTimer, **options) -> ObjectInstance:
    name = uuid.uuid4().hex
    path = tmp_path / f"{name}.sqlite"
    return ObjectInstance(
        cls, object_id=object_id("test", cls.__name__, name), name=name, path=path, epoch=1, timer=timer, **options
    )


@pytest.fixture
def hazard(tmp_path, timer):
    instance = unhydrated(Hazard, tmp_path, timer, poison_after=3)
    instance.hydrate()
    yield instance
    instance.close()


def call(instance: ObjectInstance, method: str, **args) -> Call:
    return Call(new_call_id(), instance.object_id, "Hazard", instance.name, method, args)


def run(instance: ObjectInstance, method: str, **args):
    (outcome,) = instance.run_batch([call(instance, method, **args)]).outcomes
    return outcome


@pytest.mark.parametrize("method", ["spin", "spin_catching_everything", "swallow_the_interrupt_once", "endless_sql"])
def test_a_call_past_its_limit_is_interrupted_changes_nothing_and_the_next_call_answers(hazard, method):
    outcome = run(hazard, method)

    assert not outcome.ok
    assert outcome.error["code"] == "time_limit_exceeded", outcome.error
    assert f"Hazard/{hazard.name}.{method}" in outcome.error["message"]
    assert run(hazard, "mark", note="after").result == 1  # its own insert was rolled back


def test_endless_sql_is_interrupted_without_the_watchdog(tmp_path):
    # Given: an instance with no watchdog thread (only SQLite's progress handler)
    instance = unhydrated(Hazard, tmp_path, CallTimer(LIMIT_S))
    instance.hydrate()
    try:
        assert run(instance, "endless_sql").error["code"] == "time_limit_exceeded"
        assert run(instance, "mark", note="after").result == 1
    finally:
        instance.close()


def test_other_calls_of_the_batch_still_run(hazard):
    outcomes = hazard.run_batch([call(hazard, "mark", note="a"), call(hazard, "spin"), call(hazard, "mark", note="b")])
    assert [o.ok for o in outcomes.outcomes] == [True, False, True]
    assert outcomes.outcomes[2].result == 2


def test_an_on_start_that_spins_fails_the_start(tmp_path, timer):
    class SpinsAtStart(Hazard):
        def on_start(self) -> None:
            while True:
                pass

    instance = unhydrated(SpinsAtStart, tmp_path, timer)
    with pytest.raises(StartFailed, match="time limit"):
        instance.hydrate()


def test_a_call_whose_workers_died_often_enough_is_poisoned_not_run_and_the_answer_is_kept(hazard):
    poisoned = replace(call(hazard, "mark", note="never"), crashes=3)

    (outcome,) = hazard.run_batch([poisoned]).outcomes

    assert outcome.error["code"] == "poisoned"
    assert "3 times" in outcome.error["message"]
    assert run(hazard, "mark", note="next").result == 1  # "never" was not inserted
    (again,) = hazard.run_batch([replace(poisoned, crashes=0)]).outcomes  # a repeat gets the recorded answer
    assert again == outcome


def test_a_call_that_crashed_fewer_times_runs(hazard):
    assert hazard.run_batch([replace(call(hazard, "mark", note="x"), crashes=2)]).outcomes[0].result == 1


def test_stuck_reports_a_call_that_ignored_its_interrupt():
    clock = [0.0]
    timer = CallTimer(1.0, stuck_after_s=1.0, clock=lambda: clock[0])
    entered = threading.Event()
    release = threading.Event()

    def blocked() -> None:
        try:
            with timer.limit("Hazard/x.block_in_c"):
                entered.set()
                release.wait()  # blocked in C: the interrupt waits until this returns
        except BaseException:
            pass

    thread = threading.Thread(target=blocked)
    thread.start()
    entered.wait()
    clock[0] = 1.5
    assert timer.interrupt_expired() == 1
    assert timer.stuck() == []
    clock[0] = 2.5
    assert timer.stuck() == ["Hazard/x.block_in_c"]
    release.set()
    thread.join()
    assert timer.stuck() == []
