"""What the Foundation agents share: state mirrored to the shared database, rebuild, reset, export.

Each agent keeps its working state in its own SQLite tables and writes the same rows to
shared `foundation_*` tables in the same call, so both commit together (or not at all).
The shared database is the source of truth; an object's tables are a copy it can lose:

- Pattern A (rebuild): an object that has never recorded a generation (a new object, or
  one whose state was deleted) copies its rows back from the shared tables in `on_start()`.
- Pattern B (reset): `reset()` clears the object's tables and moves it to the next
  generation. Shared rows keep their generation, so a later rebuild reads only rows
  written after the reset and what was deliberately cleared stays cleared.
- A row the object creates must be new in the shared table; if it is not, the call fails
  with `state_diverged` rather than overwrite the source of truth.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from solo import DurableObject, UserError, rpc

MAX_AUDIT_ROWS = 500


def diverged(what: str) -> UserError:
    """A row this object creates is already in the shared table: its own state is behind the shared
    database (for example after `POST /v1/objects/.../restore` to an earlier sequence)."""
    return UserError(
        f"{what} is already in the shared database, so this object's state is behind it:"
        " reset the object, or delete it to rebuild it from the shared database",
        status=409,
        code="state_diverged",
    )


class FoundationAgent(DurableObject, abstract=True):
    """The agents' base class: abstract, so it is checked like any object class but not served.

    A subclass names its tables in `local_tables` and implements `rebuild(generation)`.
    """

    local_tables: ClassVar[tuple[str, ...]] = ()

    def on_start(self) -> None:
        self.rebuilt_rows = 0  # in memory: what this activation restored from the shared database
        # The generation marker, not empty tables, says "nothing local": a reset object is empty too.
        if self.storage.get("generation") is None:
            generation = self._shared_generation()
            self.storage.put("generation", generation)
            self.rebuilt_rows = self.rebuild(generation)
            if self.rebuilt_rows:
                self.audit("rebuilt", generation=generation, rows=self.rebuilt_rows)

    def rebuild(self, generation: int) -> int:
        """Copy this object's rows of `generation` from the shared tables; return how many."""
        raise NotImplementedError

    @property
    def generation(self) -> int:
        return self.storage.get("generation")

    def audit(self, action: str, *, actor: str | None = None, **detail: Any) -> None:
        """Append to the shared audit log; commits with the call that writes it."""
        self.shared.execute(
            "INSERT INTO foundation_audit_log (at_ms, agent_class, agent_name, action, actor, detail)"
            " VALUES (:at_ms, :agent_class, :agent_name, :action, :actor, :detail)",
            at_ms=self.ctx.now_ms(),
            agent_class=self.class_name,
            agent_name=self.name,
            action=action,
            actor=actor,
            detail=json.dumps(detail, sort_keys=True),
        )

    def _shared_generation(self) -> int:
        rows = self.shared.query(
            "SELECT generation FROM foundation_generations"
            " WHERE agent_class = :agent_class AND agent_name = :agent_name",
            agent_class=self.class_name,
            agent_name=self.name,
        )
        return rows[0]["generation"] if rows else 0

    @rpc
    def reset(self, reason: str, actor: str | None = None) -> dict:
        """Pattern B: clear this object's state and start its next generation (recorded in the audit log).

        The shared rows of earlier generations stay, for the record; no rebuild brings them back.
        """
        if not reason.strip():
            raise UserError("reset needs a reason, for the audit log", status=422, code="invalid_reason")
        cleared = {table: self.sql.execute(f"DELETE FROM {table}").rowcount for table in self.local_tables}
        generation = self.generation + 1
        self.storage.put("generation", generation)
        self.shared.execute(
            "INSERT INTO foundation_generations (agent_class, agent_name, generation, reset_ms)"
            " VALUES (:agent_class, :agent_name, :generation, :reset_ms)"
            " ON CONFLICT (agent_class, agent_name)"
            " DO UPDATE SET generation = excluded.generation, reset_ms = excluded.reset_ms",
            agent_class=self.class_name,
            agent_name=self.name,
            generation=generation,
            reset_ms=self.ctx.now_ms(),
        )
        self.audit("reset", actor=actor, reason=reason, generation=generation, cleared=cleared)
        return {"generation": generation, "cleared": cleared}

    @rpc
    def export_state(self) -> dict:
        """This object's state as JSON: its generation and every row of its tables."""
        tables = {
            table: [dict(row) for row in self.sql.execute(f"SELECT * FROM {table} ORDER BY rowid")]
            for table in self.local_tables
        }
        return {
            "class": self.class_name,
            "name": self.name,
            "generation": self.generation,
            "exported_ms": self.ctx.now_ms(),
            "tables": tables,
        }

    @rpc
    def status(self) -> dict:
        """Generation, row counts, and how many rows this activation rebuilt from the shared database."""
        rows = {table: self.sql.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in self.local_tables}
        return {"generation": self.generation, "rows": rows, "rebuilt_rows": self.rebuilt_rows}

    @rpc
    def audit_trail(self, limit: int = 50) -> list[dict]:
        """This object's entries in the shared audit log, newest first."""
        if not 1 <= limit <= MAX_AUDIT_ROWS:
            raise UserError(f"limit must be 1 to {MAX_AUDIT_ROWS}", status=422, code="invalid_limit")
        rows = self.shared.query(
            "SELECT id, at_ms, action, actor, detail FROM foundation_audit_log"
            " WHERE agent_class = :agent_class AND agent_name = :agent_name ORDER BY id DESC LIMIT :limit",
            agent_class=self.class_name,
            agent_name=self.name,
            limit=limit,
        )
        return [{**row, "detail": json.loads(row["detail"])} for row in rows]
