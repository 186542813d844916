"""Workflow over HTTP: actions, conditions, waits on the alarm, retries with backoff, signals, cancel."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import wait_until
from tests.examples.conftest import CallFailed

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


def test_a_condition_picks_the_branch_from_the_input(api, run_id):
    small = api.call(f"Workflow/small-{run_id}", "start", definition=ORDER, input={"amount": 20})
    large = api.call(f"Workflow/large-{run_id}", "start", definition=ORDER, input={"amount": 500})

    assert small["status"] == "completed"
    assert small["context"] == {"amount": 20, "received": True, "accepted": 1}
    assert large["status"] == "waiting"
    assert (large["current_step"], large["waiting_for"]) == ("review", "signal")
    steps = [(h["step_id"], h["outcome"]) for h in api.call(f"Workflow/small-{run_id}", "history")]
    assert steps == [("receive", "done"), ("route", "done"), ("accept", "done")]


def test_a_signal_ends_a_wait_and_its_data_joins_the_context(api, run_id):
    workflow = f"Workflow/signal-{run_id}"
    api.call(workflow, "start", definition=ORDER, input={"amount": 500})

    with pytest.raises(CallFailed) as failure:
        api.call(workflow, "signal", name="rejected")
    assert (failure.value.status, failure.value.error["code"]) == (409, "not_waiting")

    done = api.call(workflow, "signal", name="approved", data={"approver": "kim"})
    assert done["status"] == "completed"
    assert done["context"]["approver"] == "kim" and done["context"]["accepted"] == 1


def test_a_condition_may_loop_back_and_a_loop_that_never_ends_fails(api, run_id):
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

    finite = api.call(f"Workflow/loop-{run_id}", "start", definition=counting_to(3), input={"n": 0})
    endless = api.call(f"Workflow/endless-{run_id}", "start", definition=counting_to(10**9), input={"n": 0})

    assert finite["status"] == "completed" and finite["context"] == {"n": 3}
    assert endless["status"] == "failed" and "without a wait" in endless["error"]


def test_a_failing_action_is_retried_with_backoff_until_it_succeeds(api, run_id):
    workflow = f"Workflow/retry-{run_id}"
    definition = {
        "steps": [{"id": "pay", "kind": "action", "action": "flaky", "params": {"fail_times": 2}, "backoff_s": 0.2}]
    }
    started = api.call(workflow, "start", definition=definition)
    assert (started["status"], started["attempt"], started["waiting_for"]) == ("retrying", 2, "retry")

    wait_until(_finished(api, workflow), 30, "the retries to run")

    status = api.call(workflow, "status")
    assert status["status"] == "completed" and status["context"] == {"flaky_attempts": 3}
    attempts = [(h["attempt"], h["outcome"]) for h in api.call(workflow, "history")]
    assert attempts == [(1, "failed"), (2, "failed"), (3, "done")]
    assert "retrying in 0.2 s" in api.call(workflow, "history")[0]["detail"]
    assert "retrying in 0.4 s" in api.call(workflow, "history")[1]["detail"]


def test_an_action_that_keeps_failing_fails_the_workflow_after_its_retries(api, run_id):
    workflow = f"Workflow/doomed-{run_id}"
    definition = {
        "steps": [
            {
                "id": "call",
                "kind": "action",
                "action": "fail",
                "params": {"message": "down"},
                "retries": 1,
                "backoff_s": 0.1,
            },
            {"id": "never", "kind": "action", "action": "set", "params": {"reached": True}},
        ]
    }
    api.call(workflow, "start", definition=definition)

    wait_until(_finished(api, workflow), 30, "the workflow to fail")

    status = api.call(workflow, "status")
    assert status["status"] == "failed"
    assert "failed after 2 attempts" in status["error"] and "down" in status["error"]
    assert "reached" not in status["context"]


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


def test_cancel_stops_a_waiting_workflow(api, run_id):
    workflow = f"Workflow/cancel-{run_id}"
    api.call(workflow, "start", definition={"steps": [{"id": "nap", "kind": "wait", "seconds": 600}]})

    cancelled = api.call(workflow, "cancel")

    assert cancelled["status"] == "cancelled" and cancelled["finished_ms"] is not None
    with pytest.raises(CallFailed) as failure:
        api.call(workflow, "cancel")
    assert failure.value.error["code"] == "not_running"
    with pytest.raises(CallFailed) as failure:
        api.call(workflow, "start", definition=ORDER)
    assert failure.value.error["code"] == "already_started"


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
def test_an_invalid_definition_is_refused_and_nothing_starts(api, run_id, definition, complaint):
    workflow = f"Workflow/invalid-{run_id}"
    with pytest.raises(CallFailed) as failure:
        api.call(workflow, "start", definition=definition)

    assert failure.value.status == 400
    assert failure.value.error["code"] == "invalid_definition"
    assert complaint in failure.value.error["message"]
    assert api.call(workflow, "status") == {"status": "not_started"}


def test_a_finished_workflow_notifies_the_user_it_names(api, run_id):
    workflow, user = f"Workflow/notify-{run_id}", f"owner-{run_id}"
    api.call(workflow, "start", definition={**ORDER, "notify": user}, input={"amount": 5})
    wait_until(_finished(api, workflow), 30, "the workflow to finish")
    wait_until(lambda: api.call(f"Notification/{user}", "unread_count") == 1, 30, "the notification")
    (notification,) = api.call(f"Notification/{user}", "recent")
    assert notification["kind"] == "workflow"
    assert notification["payload"]["status"] == "completed"
    with pytest.raises(CallFailed):
        api.call(f"Workflow/bad-{run_id}", "start", definition={**ORDER, "notify": "a/b"})
