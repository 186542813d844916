"""A workflow engine in one object: steps that act, wait and branch, with retries, driven by the alarm.

A definition is a list of steps, run in order unless a step names its `next`
(a step id, or null to end the workflow):

    {"steps": [
        {"id": "check", "kind": "action", "action": "set", "params": {"checked": true}},
        {"id": "route", "kind": "condition",
         "if": {"field": "amount", "op": ">", "value": 100}, "then": "approve", "else": "accept"},
        {"id": "approve", "kind": "wait", "signal": "approved", "next": "pay"},
        {"id": "accept", "kind": "wait", "seconds": 5},
        {"id": "pay", "kind": "action", "action": "flaky", "params": {"fail_times": 2},
         "retries": 3, "backoff_s": 1}
    ]}

- `action` runs a function of ACTIONS on the workflow's context (which starts as the
  input) and merges what it returns into the context. A failing action is retried
  after `backoff_s`, 2 x `backoff_s`, 4 x ... up to `retries` times; then the workflow fails.
- `wait` sleeps `seconds`, or waits for `signal(name, data)`.
- `condition` compares a context field with a value and goes to `then` or `else`.

The object has a single alarm, used both for waits and for retries, so the
workflow row records what the alarm is for (`waiting_for`: "timer" or "retry").
Everything (status, context, step history) is in SQL: a workflow survives any
restart and carries on when its alarm fires on whichever worker runs it next.
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from solo import AlarmInfo, DurableObject, UserError, rpc

MAX_STEPS = 100
MAX_RETRIES = 10
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF_S = 1.0
MAX_BACKOFF_S = 3600.0
MAX_WAIT_S = 7 * 24 * 3600.0
MAX_STEPS_WITHOUT_WAITING = 1000  # a loop of conditions and actions that never waits would never end
FINISHED = ("completed", "failed", "cancelled")

COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


# -- actions ---------------------------------------------------------------------------


class ActionFailed(Exception):
    """An action could not do its work this time; the step is retried."""


@dataclass(frozen=True)
class Action:
    """A named step function: `run(context, params, attempt)` returns fields to merge into the context."""

    run: Callable[[dict[str, Any], dict[str, Any], int], dict[str, Any]]
    required: dict[str, type | tuple[type, ...]]
    optional: dict[str, type | tuple[type, ...]]
    open_params: bool = False  # any params are accepted (they are the action's data)

    def params_problem(self, params: dict[str, Any]) -> str | None:
        if self.open_params:
            return None
        for name in self.required:
            if name not in params:
                return f"needs the parameter {name!r}"
        for name, value in params.items():
            expected = self.required.get(name) or self.optional.get(name)
            if expected is None:
                return f"has no parameter {name!r}"
            if isinstance(value, bool) or not isinstance(value, expected):
                return f"parameter {name!r} has the wrong type"
        return None


def _set(context: dict[str, Any], params: dict[str, Any], attempt: int) -> dict[str, Any]:
    return dict(params)


def _increment(context: dict[str, Any], params: dict[str, Any], attempt: int) -> dict[str, Any]:
    field = params["field"]
    current = context.get(field, 0)
    if isinstance(current, bool) or not isinstance(current, (int, float)):
        raise ActionFailed(f"context field {field!r} is not a number")
    return {field: current + params.get("by", 1)}


def _flaky(context: dict[str, Any], params: dict[str, Any], attempt: int) -> dict[str, Any]:
    """Fails its first `fail_times` attempts, then succeeds: retries made visible, deterministically."""
    if attempt <= params["fail_times"]:
        raise ActionFailed(f"planned failure {attempt} of {params['fail_times']}")
    return {"flaky_attempts": attempt}


def _fail(context: dict[str, Any], params: dict[str, Any], attempt: int) -> dict[str, Any]:
    raise ActionFailed(params.get("message", "this action always fails"))


ACTIONS: dict[str, Action] = {
    "set": Action(_set, {}, {}, open_params=True),
    "increment": Action(_increment, {"field": str}, {"by": (int, float)}),
    "flaky": Action(_flaky, {"fail_times": int}, {}),
    "fail": Action(_fail, {}, {"message": str}),
}


# -- definitions -----------------------------------------------------------------------

_STEP_KEYS = {
    "action": {"id", "kind", "next", "action", "params", "retries", "backoff_s"},
    "wait": {"id", "kind", "next", "seconds", "signal"},
    "condition": {"id", "kind", "if", "then", "else"},
}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _step_problems(step: dict[str, Any], ids: set[str]) -> list[str]:
    where = f"step {step['id']!r}"
    kind = step["kind"]
    problems = [f"{where}: unknown key {key!r}" for key in sorted(set(step) - _STEP_KEYS[kind])]
    targets = ["then", "else"] if kind == "condition" else ["next"]
    for target in targets:
        value = step.get(target)
        if value is not None and (not isinstance(value, str) or value not in ids):
            problems.append(f"{where}: {target} names no step: {value!r}")
    if kind == "action":
        name = step.get("action")
        action = ACTIONS.get(name) if isinstance(name, str) else None
        params = step.get("params", {})
        if action is None:
            problems.append(f"{where}: unknown action {name!r} (known: {', '.join(sorted(ACTIONS))})")
        elif not isinstance(params, dict):
            problems.append(f"{where}: params must be an object")
        elif problem := action.params_problem(params):
            problems.append(f"{where}: action {name!r} {problem}")
        retries = step.get("retries", DEFAULT_RETRIES)
        if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= MAX_RETRIES:
            problems.append(f"{where}: retries must be an integer from 0 to {MAX_RETRIES}")
        backoff_s = step.get("backoff_s", DEFAULT_BACKOFF_S)
        if not _is_number(backoff_s) or not 0 < backoff_s <= MAX_BACKOFF_S:
            problems.append(f"{where}: backoff_s must be a number of seconds above 0, at most {MAX_BACKOFF_S}")
    elif kind == "wait":
        if ("seconds" in step) == ("signal" in step):
            problems.append(f"{where}: a wait has either seconds or signal")
        elif "seconds" in step and (not _is_number(step["seconds"]) or not 0 < step["seconds"] <= MAX_WAIT_S):
            problems.append(f"{where}: seconds must be a number above 0, at most {MAX_WAIT_S}")
        elif "signal" in step and (not isinstance(step["signal"], str) or not step["signal"]):
            problems.append(f"{where}: signal must be a non-empty string")
    else:
        test = step.get("if")
        if not isinstance(test, dict) or set(test) != {"field", "op", "value"}:
            problems.append(f"{where}: if must be an object of field, op and value")
        else:
            if not isinstance(test["field"], str) or not test["field"]:
                problems.append(f"{where}: if.field must be a non-empty string")
            if not isinstance(test["op"], str) or test["op"] not in COMPARISONS:
                problems.append(f"{where}: unknown op {test['op']!r} (known: {' '.join(COMPARISONS)})")
        problems.extend(f"{where}: a condition needs {branch!r}" for branch in ("then", "else") if branch not in step)
    return problems


def check_definition(definition: dict[str, Any]) -> list[dict[str, Any]]:
    """The definition's steps, each with its `next` filled in; UserError listing every problem if it is invalid."""
    steps = definition.get("steps")
    problems = [f"unknown key {key!r}" for key in sorted(set(definition) - {"steps", "name", "notify"})]
    if not isinstance(definition.get("name", ""), str):
        problems.append("name must be a string")
    notify = definition.get("notify", "user")
    if not isinstance(notify, str) or not 0 < len(notify) <= 256 or "/" in notify or not notify.isprintable():
        problems.append("notify must be a user id (1 to 256 printable characters, no '/')")
    if not isinstance(steps, list) or not 1 <= len(steps) <= MAX_STEPS:
        problems.append(f"steps must be a list of 1 to {MAX_STEPS} steps")
        steps = []
    ids: set[str] = set()
    well_formed = []
    for index, step in enumerate(steps):
        if not isinstance(step, dict) or not isinstance(step.get("id"), str) or not step["id"]:
            problems.append(f"step {index}: needs an id (a non-empty string)")
        elif step["id"] in ids:
            problems.append(f"step {index}: id {step['id']!r} is used twice")
        else:
            ids.add(step["id"])
            kind = step.get("kind")
            if isinstance(kind, str) and kind in _STEP_KEYS:
                well_formed.append(step)
            else:
                problems.append(f"step {step['id']!r}: unknown kind {kind!r} (known: action, wait, condition)")
    for step in well_formed:
        problems.extend(_step_problems(step, ids))
    if problems:
        raise UserError("invalid workflow definition: " + "; ".join(problems), code="invalid_definition")
    filled = []
    for index, step in enumerate(steps):
        following = steps[index + 1]["id"] if index + 1 < len(steps) else None
        filled.append(step if step["kind"] == "condition" else {"next": following, **step})
    return filled


def evaluate(test: dict[str, Any], context: dict[str, Any]) -> bool:
    """A condition's test against the context; ValueError if it cannot be evaluated."""
    field, op, value = test["field"], test["op"], test["value"]
    if field not in context:
        raise ValueError(f"the context has no field {field!r}")
    try:
        return bool(COMPARISONS[op](context[field], value))
    except TypeError:
        raise ValueError(f"cannot compare {context[field]!r} {op} {value!r}") from None


# -- the object ----------------------------------------------------------------------------


class Workflow(DurableObject):
    """One run of a workflow definition: its status, context and step history, in SQL.

    `start(definition, input)` checks the whole definition, then runs steps until
    the first wait, retry or the end; the alarm runs the rest. `signal` ends a wait
    for a signal; `cancel` stops the workflow.
    """

    migrations = [
        """
        CREATE TABLE workflow (
            id INTEGER PRIMARY KEY CHECK (id = 0),
            name TEXT,
            steps TEXT NOT NULL,            -- JSON: the checked definition's steps
            input TEXT NOT NULL,
            context TEXT NOT NULL,
            status TEXT NOT NULL,           -- waiting, retrying, completed, failed, cancelled (running within a call)
            current_step TEXT,
            attempt INTEGER NOT NULL DEFAULT 0,
            waiting_for TEXT,               -- what the alarm (or a signal) is for: timer, retry, signal
            wake_at_ms INTEGER,
            error TEXT,
            started_ms INTEGER NOT NULL,
            finished_ms INTEGER
        );
        CREATE TABLE step_history (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            step_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            outcome TEXT NOT NULL,          -- done, failed, waiting, cancelled
            detail TEXT,
            at_ms INTEGER NOT NULL
        );
        """,
        # Who hears when the workflow finishes (a Notification object's user), if anyone.
        "ALTER TABLE workflow ADD COLUMN notify TEXT",
    ]

    @rpc
    def start(self, definition: dict[str, Any], input: dict[str, Any] | None = None) -> dict[str, Any]:
        """Check the definition and start it with `input` as its context. 409 if a workflow was started here."""
        if self._row() is not None:
            raise UserError("this workflow has already been started", status=409, code="already_started")
        steps = check_definition(definition)
        context = dict(input or {})
        self.sql.execute(
            "INSERT INTO workflow (id, name, steps, input, context, status, started_ms, notify)"
            " VALUES (0, ?, ?, ?, ?, ?, ?, ?)",
            (
                definition.get("name"),
                json.dumps(steps),
                json.dumps(context),
                json.dumps(context),
                "running",
                self.ctx.now_ms(),
                definition.get("notify"),
            ),
        )
        self._run_from(steps[0]["id"])
        return self.status()

    @rpc
    def status(self) -> dict[str, Any]:
        """Status (not_started, waiting, retrying, completed, failed, cancelled), current step, context, error."""
        row = self._row()
        if row is None:
            return {"status": "not_started"}
        return {
            "name": row["name"],
            "status": row["status"],
            "current_step": row["current_step"],
            "attempt": row["attempt"],
            "waiting_for": row["waiting_for"],
            "wake_at_ms": row["wake_at_ms"],
            "context": json.loads(row["context"]),
            "input": json.loads(row["input"]),
            "error": row["error"],
            "started_ms": row["started_ms"],
            "finished_ms": row["finished_ms"],
        }

    @rpc
    def history(self) -> list[dict[str, Any]]:
        """Every step execution so far, oldest first."""
        rows = self.sql.execute(
            "SELECT seq, step_id, kind, attempt, outcome, detail, at_ms FROM step_history ORDER BY seq"
        ).fetchall()
        return [dict(row) for row in rows]

    @rpc
    def signal(self, name: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        """Deliver signal `name` to a workflow waiting for it; `data` is merged into the context."""
        row = self._row()
        step = self._steps(row)[row["current_step"]] if row else None
        if row is None or row["waiting_for"] != "signal" or step is None or step.get("signal") != name:
            raise UserError(f"the workflow is not waiting for the signal {name!r}", status=409, code="not_waiting")
        context = {**json.loads(row["context"]), **(data or {})}
        self._update(context=json.dumps(context), waiting_for=None)
        self._record(step, 1, "done", f"signal {name!r}")
        self._run_from(step["next"])
        return self.status()

    @rpc
    def cancel(self) -> dict[str, Any]:
        """Stop the workflow where it is; 409 if it has already finished."""
        row = self._row()
        if row is None or row["status"] in FINISHED:
            raise UserError("there is no running workflow to cancel", status=409, code="not_running")
        self.storage.delete_alarm()
        self._record(self._steps(row)[row["current_step"]], row["attempt"], "cancelled", None)
        self._finish("cancelled")
        return self.status()

    def alarm(self, info: AlarmInfo) -> None:
        """The end of a wait, or the time to retry a failed action."""
        row = self._row()
        if row is None or row["status"] in FINISHED or row["waiting_for"] not in ("timer", "retry"):
            return  # nothing is waiting for this alarm any more
        step = self._steps(row)[row["current_step"]]
        if row["waiting_for"] == "timer":
            self._update(waiting_for=None, wake_at_ms=None)
            self._record(step, 1, "done", "waited")
            self._run_from(step["next"])
            return
        self._update(status="running", waiting_for=None, wake_at_ms=None)
        if self._run_action(step, row["attempt"]):
            self._run_from(step["next"])

    # -- running steps ----------------------------------------------------------------

    def _run_from(self, step_id: str | None) -> None:
        """Run steps from `step_id` until one waits, an action backs off, or the workflow ends."""
        steps = self._steps(self._row())
        for _ in range(MAX_STEPS_WITHOUT_WAITING):
            if step_id is None:
                self._finish("completed")
                return
            step = steps[step_id]
            self._update(status="running", current_step=step_id, attempt=1)
            if step["kind"] == "wait":
                self._begin_wait(step)
                return
            if step["kind"] == "condition":
                try:
                    step_id = self._decide(step)
                except ValueError as exc:  # the context cannot answer the test: retrying would not help
                    self._record(step, 1, "failed", str(exc))
                    self._finish("failed", error=f"condition {step['id']!r}: {exc}")
                    return
                continue
            if not self._run_action(step, attempt=1):
                return
            step_id = step["next"]
        self._finish("failed", error=f"more than {MAX_STEPS_WITHOUT_WAITING} steps ran without a wait: a loop?")

    def _run_action(self, step: dict[str, Any], attempt: int) -> bool:
        """Run an action step's attempt; False if it failed (a retry is scheduled, or the workflow failed)."""
        context = json.loads(self._row()["context"])
        try:
            changes = ACTIONS[step["action"]].run(dict(context), step.get("params", {}), attempt)
        except Exception as exc:  # any failure of an action is retried
            return self._action_failed(step, attempt, f"{type(exc).__name__}: {exc}")
        self._update(context=json.dumps({**context, **changes}))
        self._record(step, attempt, "done", json.dumps(changes))
        return True

    def _action_failed(self, step: dict[str, Any], attempt: int, error: str) -> bool:
        retries = step.get("retries", DEFAULT_RETRIES)
        if attempt > retries:
            self._record(step, attempt, "failed", error)
            self._finish("failed", error=f"step {step['id']!r} failed after {attempt} attempts: {error}")
            return False
        delay_s = min(MAX_BACKOFF_S, step.get("backoff_s", DEFAULT_BACKOFF_S) * 2 ** (attempt - 1))
        wake_at = self.ctx.now_ms() + math.ceil(delay_s * 1000)
        self._record(step, attempt, "failed", f"{error}; retrying in {delay_s:g} s")
        self._update(status="retrying", attempt=attempt + 1, waiting_for="retry", wake_at_ms=wake_at)
        self.storage.set_alarm(wake_at)
        return False

    def _begin_wait(self, step: dict[str, Any]) -> None:
        if "signal" in step:
            self._update(status="waiting", waiting_for="signal")
            self._record(step, 1, "waiting", f"for signal {step['signal']!r}")
            return
        wake_at = self.ctx.now_ms() + math.ceil(step["seconds"] * 1000)
        self._update(status="waiting", waiting_for="timer", wake_at_ms=wake_at)
        self._record(step, 1, "waiting", f"{step['seconds']:g} s")
        self.storage.set_alarm(wake_at)

    def _decide(self, step: dict[str, Any]) -> str | None:
        """The step a condition leads to (None: the end); ValueError if it cannot be evaluated."""
        test = step["if"]
        outcome = evaluate(test, json.loads(self._row()["context"]))
        chosen = step["then" if outcome else "else"]
        self._record(step, 1, "done", f"{test['field']} {test['op']} {test['value']!r} is {outcome}: next {chosen}")
        return chosen

    def _finish(self, status: str, error: str | None = None) -> None:
        self._update(status=status, error=error, waiting_for=None, wake_at_ms=None, finished_ms=self.ctx.now_ms())
        user = self._row()["notify"]
        if user:  # leaves once this finish is durable (the outbox), delivered live if the user is online
            payload = {"workflow": self.name, "name": self._row()["name"], "status": status, "error": error}
            self.objects.get("Notification", user).send("notify", payload=payload, kind="workflow")

    # -- rows ------------------------------------------------------------------------------

    def _row(self) -> Any:
        return self.sql.execute("SELECT * FROM workflow").fetchone()

    def _steps(self, row: Any) -> dict[str, dict[str, Any]]:
        return {step["id"]: step for step in json.loads(row["steps"])}

    def _update(self, **fields: Any) -> None:
        assignments = ", ".join(f"{column} = ?" for column in fields)  # column names come from this module only
        self.sql.execute(f"UPDATE workflow SET {assignments}", tuple(fields.values()))

    def _record(self, step: dict[str, Any], attempt: int, outcome: str, detail: str | None) -> None:
        self.sql.execute(
            "INSERT INTO step_history (step_id, kind, attempt, outcome, detail, at_ms) VALUES (?, ?, ?, ?, ?, ?)",
            (step["id"], step["kind"], attempt, outcome, detail, self.ctx.now_ms()),
        )
