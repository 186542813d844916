"""TaskAgent: a task queue per object, every task also in `foundation_tasks`."""

from __future__ import annotations

import json
from typing import Any, Literal

from solo import UserError, rpc
from solo.examples.foundation.agent import FoundationAgent, diverged

Status = Literal["queued", "running", "done", "failed"]
MAX_TITLE_CHARS = 500

_COLUMNS = "id, title, status, payload, attempts, error, created_ms, updated_ms"


class TaskAgent(FoundationAgent):
    """A queue of tasks: add, claim the oldest queued one, complete or fail it (optionally to retry)."""

    migrations = [
        "CREATE TABLE tasks (id INTEGER PRIMARY KEY, title TEXT NOT NULL,"
        " status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),"
        " payload TEXT NOT NULL, attempts INTEGER NOT NULL, error TEXT,"
        " created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL);"
        "CREATE INDEX tasks_by_status ON tasks (status, id)",
    ]
    local_tables = ("tasks",)

    def rebuild(self, generation: int) -> int:
        rows = self.shared.query(
            f"SELECT {_COLUMNS} FROM foundation_tasks WHERE agent = :agent AND generation = :generation ORDER BY id",
            agent=self.name,
            generation=generation,
        )
        self.sql.executemany(
            f"INSERT INTO tasks ({_COLUMNS}) VALUES"
            " (:id, :title, :status, :payload, :attempts, :error, :created_ms, :updated_ms)",
            rows,
        )
        return len(rows)

    @rpc
    def add(self, title: str, payload: dict[str, Any] | None = None) -> dict:
        """Queue a task; returns it with its id."""
        if not title.strip() or len(title) > MAX_TITLE_CHARS:
            raise UserError(f"title must be 1 to {MAX_TITLE_CHARS} characters", status=422, code="invalid_task")
        now = self.ctx.now_ms()
        task_id = self.sql.execute(
            "INSERT INTO tasks (title, status, payload, attempts, created_ms, updated_ms)"
            " VALUES (?, 'queued', ?, 0, ?, ?)",
            (title, json.dumps(payload or {}), now, now),
        ).lastrowid
        return self._mirror(task_id, new=True)

    @rpc
    def claim_next(self) -> dict | None:
        """Mark the oldest queued task running and return it; None when the queue is empty."""
        row = self.sql.execute("SELECT id FROM tasks WHERE status = 'queued' ORDER BY id LIMIT 1").fetchone()
        if row is None:
            return None
        self.sql.execute(
            "UPDATE tasks SET status = 'running', attempts = attempts + 1, error = NULL, updated_ms = ? WHERE id = ?",
            (self.ctx.now_ms(), row["id"]),
        )
        return self._mirror(row["id"])

    @rpc
    def complete(self, task_id: int) -> dict:
        """Mark a running task done."""
        self._running(task_id)
        self.sql.execute("UPDATE tasks SET status = 'done', updated_ms = ? WHERE id = ?", (self.ctx.now_ms(), task_id))
        return self._mirror(task_id)

    @rpc
    def fail(self, task_id: int, error: str, retry: bool = False) -> dict:
        """Mark a running task failed, or queue it again when `retry` is true."""
        self._running(task_id)
        if not error.strip():
            raise UserError("error must describe the failure", status=422, code="invalid_task")
        status = "queued" if retry else "failed"
        self.sql.execute(
            "UPDATE tasks SET status = ?, error = ?, updated_ms = ? WHERE id = ?",
            (status, error, self.ctx.now_ms(), task_id),
        )
        if not retry:
            self.audit("task_failed", task_id=task_id, error=error)
        return self._mirror(task_id)

    @rpc
    def list(self, status: Status | None = None) -> list[dict]:
        """Every task, oldest first; only those with `status` if given."""
        rows = self.sql.execute(
            f"SELECT {_COLUMNS} FROM tasks WHERE ? IS NULL OR status = ? ORDER BY id", (status, status)
        ).fetchall()
        return [_task(row) for row in rows]

    def _running(self, task_id: int) -> None:
        row = self.sql.execute("SELECT status FROM tasks WHERE id = ?", (task_id,)).fetchone()
        if row is None:
            raise UserError(f"no task {task_id}", status=404, code="task_not_found")
        if row["status"] != "running":
            raise UserError(f"task {task_id} is {row['status']}, not running", status=409, code="task_not_running")

    def _mirror(self, task_id: int, *, new: bool = False) -> dict:
        """Write the task's row to the shared table as it now is (a `new` one must not be there yet)."""
        row = dict(self.sql.execute(f"SELECT {_COLUMNS} FROM tasks WHERE id = ?", (task_id,)).fetchone())
        on_conflict = (
            "DO NOTHING"
            if new
            else "DO UPDATE SET status = excluded.status, attempts = excluded.attempts,"
            " error = excluded.error, updated_ms = excluded.updated_ms"
        )
        written = self.shared.execute(
            f"INSERT INTO foundation_tasks (agent, generation, {_COLUMNS}) VALUES"
            " (:agent, :generation, :id, :title, :status, :payload, :attempts, :error, :created_ms, :updated_ms)"
            f" ON CONFLICT (agent, generation, id) {on_conflict}",
            agent=self.name,
            generation=self.generation,
            **row,
        )
        if not written:
            raise diverged(f"task {task_id}")
        return _task(row)


def _task(row: Any) -> dict:
    return {**dict(row), "payload": json.loads(row["payload"])}
