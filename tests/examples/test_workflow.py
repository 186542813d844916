"""Workflow: actions, conditions, waits on the alarm, retries with backoff, signals, cancel.

Its behaviour on solo.testing.LocalSystem, where the waits are the clock moved by hand; a
wait across a worker's kill -9 on real processes.
"""

from __future__ import annotations

import pytest

from solo import CallError
from tests.e2e.conftest import wait_until

ORDER = {
    "name": "order",
    "steps": [
        {"id": "receive", "kind": "action", "action": "set", "params": {"received": True}},
        {
            "id": "route",
            "kind": "condition",
            "if": {"field": "amount", "op": ">", "value": 100},
            "then": "review",
            "else": "accept",
        },
        {"id": "review", "kind": "wait", "signal": "approved", "next": "accept"},
        {"id": "accept", "kind": "action", "action": "increment", "params": {"field": "accepted"}},
    ],
}


def _finished(api, workflow):
    return lambda: api.call(workflow, "status")["status"] in ("completed", "failed", "cancelled")


def test_a_condition_picks_the_branch_from_the_input(local):
    small = local.object("Workflow", "small").start(definition=ORDER, input={"amount": 20})
    large = local.object("Workflow", "large").start(definition=ORDER, input={"amount": 500})

    assert small["status"] == "completed"
    assert small["context"] == {"amount": 20, "received": True, "accepted": 1}
    assert large["status"] == "waiting"
    assert (large["current_step"], large["waiting_for"]) == ("review", "signal")
    steps = [(h["step_id"], h["outcome"]) for h in local.object("Workflow", "small").history()]
    assert steps == [("receive", "done"), ("route", "done"), ("accept", "done")]


def test_a_signal_ends_a_wait_and_its_data_joins_the_context(local):
    workflow = local.object("Workflow", "signal")
    workflow.start(definition=ORDER, input={"amount": 500})

    with pytest.raises(CallError) as failure:
        workflow.signal(name="rejected")
    assert (failure.value.status, failure.value.code) == (409, "not_waiting")

    done = workflow.signal(name="approved", data={"approver": "kim"})
    assert done["status"] == "completed"
    assert done["context"]["approver"] == "kim" and done["context"]["accepted"] == 1


def test_a_condition_may_loop_back_and_a_loop_that_never_ends_fails(local):
    def counting_to(limit):
        return {
            "steps": [
                {"id": "count", "kind": "action", "action": "increment", "params": {"field": "n"}},
                {
                    "id": "more",
                    "kind": "condition",
                    "if": {"field": "n", "op": "<", "value": limit},
                    "then": "count",
                    "else": None,
                },
            ]
        }

    finite = local.object("Workflow", "loop").start(definition=counting_to(3), input={"n": 0})
    endless = local.object("Workflow", "endless").start(definition=counting_to(10**9), input={"n": 0})

    assert finite["status"] == "completed" and finite["context"] == {"n": 3}
    assert endless["status"] == "failed" and "without a wait" in endless["error"]


def test_a_failing_action_is_retried_with_backoff_until_it_succeeds(local):
    workflow = local.object("Workflow", "retry")
    definition = {
        "steps": [{"id": "pay", "kind": "action", "action": "flaky", "params": {"fail_times": 2}, "backoff_s": 10}]
    }
    started = workflow.start(definition=definition)
    assert (started["status"], started["attempt"], started["waiting_for"]) == ("retrying", 2, "retry")

    local.clock.advance(seconds=9)
    assert workflow.status()["attempt"] == 2  # the backoff has not passed
    local.clock.advance(seconds=1)
    assert workflow.status()["attempt"] == 3  # failed again: now twice the backoff
    local.clock.advance(seconds=20)

    status = workflow.status()
    assert status["status"] == "completed" and status["context"] == {"flaky_attempts": 3}
    history = workflow.history()
    assert [(h["attempt"], h["outcome"]) for h in history] == [(1, "failed"), (2, "failed"), (3, "done")]
    assert "retrying in 10 s" in history[0]["detail"]
    assert "retrying in 20 s" in history[1]["detail"]


def test_an_action_that_keeps_failing_fails_the_workflow_after_its_retries(local):
    workflow = local.object("Workflow", "doomed")
    definition = {
        "steps": [
            {
                "id": "call",
                "kind": "action",
                "action": "fail",
                "params": {"message": "down"},
                "retries": 1,
                "backoff_s": 5,
            },
            {"id": "never", "kind": "action", "action": "set", "params": {"reached": True}},
        ]
    }
    workflow.start(definition=definition)

    local.clock.advance(seconds=5)

    status = workflow.status()
    assert status["status"] == "failed"
    assert "failed after 2 attempts" in status["error"] and "down" in status["error"]
    assert "reached" not in status["context"]


def test_a_wait_ends_when_its_time_comes_and_survives_a_restart(local):
    workflow = local.object("Workflow", "timer")
    definition = {
        "steps": [
            {"id": "pause", "kind": "wait", "seconds": 3600},
            {"id": "last", "kind": "action", "action": "set", "params": {"stage": "after"}},
        ]
    }
    assert workflow.start(definition=definition)["waiting_for"] == "timer"

    local.restart()
    local.clock.advance(seconds=3599)
    assert workflow.status()["status"] == "waiting"
    local.clock.advance(seconds=1)

    assert workflow.status()["status"] == "completed"


def test_cancel_stops_a_waiting_workflow(local):
    workflow = local.object("Workflow", "cancel")
    workflow.start(definition={"steps": [{"id": "nap", "kind": "wait", "seconds": 600}]})

    cancelled = workflow.cancel()

    assert cancelled["status"] == "cancelled" and cancelled["finished_ms"] == local.clock()
    with pytest.raises(CallError) as failure:
        workflow.cancel()
    assert failure.value.code == "not_running"
    with pytest.raises(CallError) as failure:
        workflow.start(definition=ORDER)
    assert failure.value.code == "already_started"
    local.clock.advance(seconds=600)
    assert workflow.status()["status"] == "cancelled"  # its timer does not bring it back


@pytest.mark.parametrize(
    ("definition", "complaint"),
    [
        ({"steps": []}, "steps must be a list"),
        ({"steps": [{"id": "a", "kind": "jump"}]}, "unknown kind 'jump'"),
        ({"steps": [{"id": "a", "kind": "action", "action": "launch"}]}, "unknown action 'launch'"),
        ({"steps": [{"id": "a", "kind": "action", "action": "set", "next": "z"}]}, "next names no step: 'z'"),
        ({"steps": [{"id": "a", "kind": "wait"}]}, "either seconds or signal"),
        ({"steps": [{"id": "a", "kind": "action", "action": "flaky"}]}, "needs the parameter 'fail_times'"),
        ({"steps": [{"id": "a", "kind": "wait", "seconds": 1}, {"id": "a", "kind": "wait", "seconds": 1}]}, "twice"),
    ],
)
def test_an_invalid_definition_is_refused_and_nothing_starts(local, definition, complaint):
    workflow = local.object("Workflow", "invalid")
    with pytest.raises(CallError) as failure:
        workflow.start(definition=definition)

    assert failure.value.status == 400
    assert failure.value.code == "invalid_definition"
    assert complaint in failure.value.message
    assert workflow.status() == {"status": "not_started"}


def test_a_finished_workflow_notifies_the_user_it_names(local):
    local.object("Workflow", "notify").start(definition={**ORDER, "notify": "owner"}, input={"amount": 5})
    local.settle()  # the notification is a call of its own, sent once the workflow's state was durable

    inbox = local.object("Notification", "owner")
    assert inbox.unread_count() == 1
    (notification,) = inbox.recent()
    assert notification["kind"] == "workflow"
    assert notification["payload"]["status"] == "completed"
    with pytest.raises(CallError):
        local.object("Workflow", "bad").start(definition={**ORDER, "notify": "a/b"})


# -- on real processes ----------------------------------------------------------------


def test_a_wait_outlives_a_worker_restart_and_the_alarm_finishes_the_workflow(api, solo, run_id):
    workflow = f"Workflow/wait-{run_id}"
    definition = {
        "steps": [
            {"id": "first", "kind": "action", "action": "set", "params": {"stage": "before"}},
            {"id": "pause", "kind": "wait", "seconds": 2},
            {"id": "last", "kind": "action", "action": "set", "params": {"stage": "after"}},
        ]
    }
    started = api.call(workflow, "start", definition=definition)
    assert (started["status"], started["waiting_for"]) == ("waiting", "timer")

    solo.restart_workers()

    wait_until(_finished(api, workflow), 30, "the wait to end")
    status = api.call(workflow, "status")
    assert status["status"] == "completed" and status["context"] == {"stage": "after"}
    assert [h["step_id"] for h in api.call(workflow, "history")] == ["first", "pause", "pause", "last"]
