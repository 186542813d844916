"""WorkerSQL's TableShard: one tenant's SQL database, as a durable object.

Each tenant gets its own shard, named after the tenant (``acme``); a large tenant
may be split over several shards named ``acme:shard-0``, ``acme:shard-1`` ...
(``shard_name()`` picks one for a key). A shard runs parameterised SQL against its
own tables, one statement or a list of them as one transaction, and every few
minutes copies a summary (rows and last write per table) to the shared table
``workersql_shard_summary``, where reports across tenants can read it.

What a tenant's SQL may do is what solo allows any object's own SQL (README, "Writing
objects"): statements on its own tables, ordinary functions, fts5; no pragmas that change
anything, no transaction control, no solo tables. solo refuses the rest before it runs
(403 ``sql_not_allowed``) and bounds what a statement may build (422 ``sql_too_big``);
this class passes both on and answers other SQL errors as its own.
"""

from __future__ import annotations

import base64
import math
import re
import sqlite3
import zlib
from typing import Any

from solo import DurableObject, SoloError, UserError, rpc

SUMMARY_SYNC_EVERY_S = 300
MAX_RESULT_ROWS = 10_000
MAX_RESULT_BYTES = 4 * 1024 * 1024  # one statement's rows, about: a result is at most 32 MiB of (ASCII) JSON
MAX_STATEMENTS = 100

_SHARD_NAME = re.compile(r"(?P<tenant>[A-Za-z0-9][A-Za-z0-9_.-]{0,63})(?::shard-(?P<shard>[0-9]{1,4}))?")
_LAST_WRITE_KEY = "last_write:"

Param = str | int | float | bool | None | dict[str, str]


def shard_name(tenant: str, key: str, shards: int) -> str:
    """The shard of `tenant` that holds `key`, when the tenant is split over `shards` objects."""
    if shards <= 1:
        return tenant
    return f"{tenant}:shard-{zlib.crc32(key.encode()) % shards}"


class TableShard(DurableObject):
    """One tenant's tables: parameterised SQL, multi-statement transactions, a summary in the shared database."""

    def on_start(self) -> None:
        match = _SHARD_NAME.fullmatch(self.name)
        self.tenant = match["tenant"] if match else None
        if self.tenant is not None:
            self.schedule("summary-sync", "sync_summary", every_s=SUMMARY_SYNC_EVERY_S, missed="skip")

    @rpc
    def execute(self, sql: str, params: list[Param] | dict[str, Param] | None = None) -> dict[str, Any]:
        """Run one statement (`?` with a list of params, `:name` with an object); columns and rows.

        Blobs travel as ``{"base64": "..."}``, in params and in rows."""
        self._require_tenant()
        return self._run(sql, params, where="statement")

    @rpc
    def transaction(self, statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Run ``[{"sql": ..., "params": ...}, ...]`` in order; all of them commit, or none if one fails."""
        self._require_tenant()
        if not 1 <= len(statements) <= MAX_STATEMENTS:
            raise UserError(f"a transaction has 1 to {MAX_STATEMENTS} statements", code="invalid_statement")
        results = []
        for index, statement in enumerate(statements):
            where = f"statements[{index}]"
            if not isinstance(statement.get("sql"), str) or set(statement) - {"sql", "params"}:
                raise UserError(f'{where}: expected {{"sql": str, "params": list | object}}', code="invalid_statement")
            results.append(self._run(statement["sql"], statement.get("params"), where=where))
        return results  # raising above rolls back every earlier statement of this call

    @rpc
    def tables(self) -> list[dict[str, Any]]:
        """The tenant's tables with their row counts and last write time (epoch ms, or null)."""
        self._require_tenant()
        return self._table_summary()

    @rpc
    def sync_now(self) -> dict[str, Any]:
        """Copy the summary to the shared database now (it is also copied every SUMMARY_SYNC_EVERY_S)."""
        self._require_tenant()
        return self.sync_summary()

    def sync_summary(self) -> dict[str, Any]:
        """Replace this shard's rows of workersql_shard_summary; they commit with this call."""
        if self.tenant is None:
            return {"tables": 0, "synced_ms": None}
        now_ms = self.ctx.now_ms()
        rows = [
            {"shard": self.name, "tenant": self.tenant, "synced_ms": now_ms, **table} for table in self._table_summary()
        ]
        self.shared.execute("DELETE FROM workersql_shard_summary WHERE shard = :shard", shard=self.name)
        if rows:
            self.shared.executemany(
                "INSERT INTO workersql_shard_summary (shard, tenant, table_name, row_count, last_write_ms, synced_ms)"
                " VALUES (:shard, :tenant, :table, :rows, :last_write_ms, :synced_ms)",
                rows,
            )
        return {"tables": len(rows), "synced_ms": now_ms}

    # -- helpers ---------------------------------------------------------------

    def _require_tenant(self) -> None:
        if self.tenant is None:
            raise UserError(
                f"{self.name!r} is not a shard name: use '<tenant>' or '<tenant>:shard-<n>'",
                code="invalid_shard_name",
            )

    def _run(self, sql: str, params: Any, *, where: str) -> dict[str, Any]:
        bound = _decode_params(params, where)
        try:
            written = self._tables_written_by(sql, bound)
            cursor = self.sql.execute(sql, bound)
            rows = _fetch(cursor, where)
        except SoloError:  # SQL solo refused (sql_not_allowed) or bounded (sql_too_big): its own answer
            raise
        except sqlite3.IntegrityError as exc:
            raise UserError(f"{where}: {exc}", status=409, code="constraint_violation") from None
        except sqlite3.Error as exc:
            raise UserError(f"{where}: {exc}", code="sql_error") from None
        if written and cursor.rowcount != 0:  # -1: a statement that does not count rows
            now_ms = self.ctx.now_ms()
            self.storage.put_many({_LAST_WRITE_KEY + table: now_ms for table in written})
        return {
            "columns": [column[0] for column in cursor.description or ()],
            "rows": [[_encode_value(value, where) for value in row] for row in rows],
            "rows_affected": max(cursor.rowcount, 0),
        }

    def _tables_written_by(self, sql: str, params: Any) -> set[str]:
        """The tables a statement writes, from its compiled program (EXPLAIN runs nothing).

        OpenWrite and Clear name the b-tree they write by root page; sqlite_schema maps a
        root page to its table (an index's page to the index's table)."""
        pages = {
            row["p2"] if row["opcode"] == "OpenWrite" else row["p1"]
            for row in self.sql.execute("EXPLAIN " + sql, params)
            if row["opcode"] in ("OpenWrite", "Clear")
        }
        if not pages:
            return set()
        marks = ",".join("?" * len(pages))
        found = self.sql.execute(
            f"SELECT DISTINCT tbl_name FROM sqlite_schema WHERE rootpage IN ({marks}) AND type IN ('table', 'index')",
            tuple(pages),
        )
        return {row[0] for row in found if not _is_internal(row[0])}

    def _table_summary(self) -> list[dict[str, Any]]:
        names = [
            row[0]
            for row in self.sql.execute("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
            if not _is_internal(row[0])
        ]
        last_writes = self.storage.get_many([_LAST_WRITE_KEY + name for name in names])
        return [
            {
                "table": name,
                "rows": self.sql.execute(f"SELECT count(*) FROM {_quote(name)}").fetchone()[0],
                "last_write_ms": last_writes.get(_LAST_WRITE_KEY + name),
            }
            for name in names
        ]


def _fetch(cursor: sqlite3.Cursor, where: str) -> list[Any]:
    """The statement's rows, refused past MAX_RESULT_ROWS rows or about MAX_RESULT_BYTES."""
    rows, size = [], 0
    for row in cursor:
        rows.append(row)
        size += sum(len(value) if isinstance(value, (str, bytes)) else 24 for value in row)
        if len(rows) > MAX_RESULT_ROWS:
            raise UserError(f"{where}: more than {MAX_RESULT_ROWS} rows; add a LIMIT", code="result_too_large")
        if size > MAX_RESULT_BYTES:
            raise UserError(f"{where}: rows of more than {MAX_RESULT_BYTES} bytes", code="result_too_large")
    return rows


def _is_internal(table: str) -> bool:
    return table.lower().startswith(("_solo_", "sqlite_"))


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _decode_params(params: Any, where: str) -> list[Any] | dict[str, Any]:
    if params is None:
        return []
    if isinstance(params, list):
        return [_decode_value(value, f"{where}.params[{i}]") for i, value in enumerate(params)]
    if isinstance(params, dict):
        return {key: _decode_value(value, f"{where}.params.{key}") for key, value in params.items()}
    raise UserError(f"{where}: params must be a list or an object", code="invalid_statement")


def _decode_value(value: Any, where: str) -> Any:
    if not isinstance(value, dict):
        return value
    if set(value) != {"base64"} or not isinstance(value["base64"], str):
        raise UserError(f'{where}: a parameter object must be {{"base64": "..."}}', code="invalid_statement")
    try:
        return base64.b64decode(value["base64"], validate=True)
    except ValueError:
        raise UserError(f"{where}: not valid base64", code="invalid_statement") from None


def _encode_value(value: Any, where: str) -> Any:
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode()}
    if isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"{where}: the result holds {value}, which JSON cannot carry", code="sql_error")
    return value
