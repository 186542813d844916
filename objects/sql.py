"""``self.sql``: a sqlite3-style handle on the object's own database, and what its SQL may do.

An object's SQL is untrusted: a class may run SQL its callers send (examples/tableshard.py
does), so nothing it asks for may crash, hang or reach past its own data. While user code
runs, its own statements are held to an allowlist (UserCodeGuard, SQLite's authorizer):

- data and schema statements on the object's own tables: SELECT, VALUES, INSERT, REPLACE,
  UPDATE, DELETE, WITH (RECURSIVE too), EXPLAIN; CREATE and DROP of TABLE, INDEX, VIEW and
  TRIGGER, ALTER TABLE, and REINDEX of its own tables and indexes;
- the functions in FUNCTIONS: scalar, aggregate, window, date and time, JSON, math;
  json_each and json_tree;
- the read-only pragmas in PRAGMAS, about the object's own tables (table_info, index_list,
  foreign_key_list...), as statements or as ``pragma_*`` table-valued functions;
- full-text search with fts5 (CREATE VIRTUAL TABLE ... USING fts5, MATCH, highlight,
  snippet, bm25), where the connection is in SQLite's defensive mode: that mode keeps
  fts5's shadow tables from ordinary SQL, so no statement can hand fts5 a corrupt index.

Everything else is refused with SqlNotAllowed before it runs, among it: transaction
control (every call runs in its own savepoint; the batch's commit is solo's); ATTACH,
DETACH and TEMP objects (another database, or state that is never shipped; VACUUM, an
ATTACH underneath, SQLite itself refuses inside a transaction); ANALYZE (its statistics
would steer solo's own statements); every other pragma (they change the file, the
connection or the whole worker: journal_mode, hard_heap_limit, temp_store_directory,
query_only, schema_version, trusted_schema...); fts3_tokenizer (it hands out and takes
C pointers), load_extension, and SQLite's introspection (sqlite_compileoption_*,
sqlite_log, dbstat, sqlite_stmt); virtual table modules other than fts5 (fts3, fts4,
rtree, fts5vocab...), and triggers on fts5's shadow tables; and solo's own tables
(``_solo_*``: call records, the epoch, storage, alarms, the outbox), which only solo's
code reaches, through ``self.storage``, schedules and calls; a view, trigger or
full-text index that names one is refused when it is created.

Statements that solo's code runs while user code runs (storage, schedules, the outbox) are
held only to what would break solo: no transaction control, no ATTACH.

Limits on every object's connection (runtime/connection.py) bound what one statement may
build: a string or blob of VALUE_LENGTH_LIMIT bytes, a statement of SQL_LENGTH_LIMIT bytes,
expressions EXPR_DEPTH_LIMIT deep, no attached database. Past them: SqlTooBig, as for a
parameter that is an int past 64 bits (Python's sqlite3 raises OverflowError binding it).
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from solo.objects.errors import SqlNotAllowed, SqlTooBig

T = TypeVar("T")

# What sqlite3 binds: a sequence for `?` placeholders, a mapping for `:name` ones.
Parameters = Sequence[Any] | Mapping[str, Any]

MIB = 1024 * 1024
VALUE_LENGTH_LIMIT = 32 * MIB  # SQLITE_LIMIT_LENGTH: one string or blob (the examples' largest is an image of 512 KiB)
SQL_LENGTH_LIMIT = 1 * MIB  # SQLITE_LIMIT_SQL_LENGTH: one statement's text (as large as a request body)
EXPR_DEPTH_LIMIT = 250  # SQLITE_LIMIT_EXPR_DEPTH (SQLite's default: 1000)

SOLO_TABLE_PREFIX = "_solo_"

# Every statement of user code starts with this comment. sqlite3 reuses a prepared statement
# by its exact text, without asking the authorizer again: a user statement must never be
# taken for one of solo's own, prepared while its tables were allowed.
_USER_STATEMENT = "/* user */ "

_A = sqlite3  # the authorizer's action codes

# Refused for every statement while user code runs, even one solo's code prepares for it:
# they would break the call's savepoint, the batch's commit or the file that is shipped.
_SOLOS_OWN = {
    _A.SQLITE_TRANSACTION: "transaction control",
    _A.SQLITE_SAVEPOINT: "transaction control",
    _A.SQLITE_ATTACH: "ATTACH",
    _A.SQLITE_DETACH: "DETACH",
}
_SOLOS_OWN_REASON = (
    "every call runs in its own savepoint, the batch's commit is solo's, and its SQL sees its own database only"
)

_DATA_AND_SCHEMA = {
    _A.SQLITE_SELECT,
    _A.SQLITE_RECURSIVE,
    _A.SQLITE_INSERT,
    _A.SQLITE_UPDATE,
    _A.SQLITE_DELETE,
    _A.SQLITE_CREATE_TABLE,
    _A.SQLITE_CREATE_INDEX,
    _A.SQLITE_CREATE_VIEW,
    _A.SQLITE_CREATE_TRIGGER,
    _A.SQLITE_DROP_TABLE,
    _A.SQLITE_DROP_INDEX,
    _A.SQLITE_DROP_VIEW,
    _A.SQLITE_DROP_TRIGGER,
    _A.SQLITE_DROP_VTABLE,
    _A.SQLITE_ALTER_TABLE,
    _A.SQLITE_REINDEX,  # each index by name (CREATE INDEX asks too): REINDEX of everything reaches solo's
}

# Statements refused by kind, named in the refusal.
_REFUSED_STATEMENTS = {
    _A.SQLITE_CREATE_TEMP_INDEX: "CREATE TEMP INDEX",
    _A.SQLITE_CREATE_TEMP_TABLE: "CREATE TEMP TABLE",
    _A.SQLITE_CREATE_TEMP_TRIGGER: "CREATE TEMP TRIGGER",
    _A.SQLITE_CREATE_TEMP_VIEW: "CREATE TEMP VIEW",
    _A.SQLITE_DROP_TEMP_INDEX: "DROP TEMP INDEX",
    _A.SQLITE_DROP_TEMP_TABLE: "DROP TEMP TABLE",
    _A.SQLITE_DROP_TEMP_TRIGGER: "DROP TEMP TRIGGER",
    _A.SQLITE_DROP_TEMP_VIEW: "DROP TEMP VIEW",
    _A.SQLITE_ANALYZE: "ANALYZE",
}
_TEMP_REASON = "TEMP objects live outside the object's file: never shipped, gone when the object moves"
_ANALYZE_REASON = "its statistics steer the plans of solo's own statements"
_CREATE = {_A.SQLITE_CREATE_TABLE, _A.SQLITE_CREATE_INDEX, _A.SQLITE_CREATE_VIEW, _A.SQLITE_CREATE_TRIGGER}
# Statements that store SQL to run later (fts5's content= names a table it will read).
_STORED_SQL = {_A.SQLITE_CREATE_VIEW, _A.SQLITE_CREATE_TRIGGER, _A.SQLITE_CREATE_VTABLE}
_SOLO_NAME = re.compile(r"_solo_\w*", re.IGNORECASE)

FUNCTIONS = frozenset(
    {
        # scalar (core)
        "abs", "changes", "char", "coalesce", "concat", "concat_ws", "format", "glob", "hex", "if", "ifnull",
        "iif", "instr", "last_insert_rowid", "length", "like", "likelihood", "likely", "lower", "ltrim", "max",
        "min", "nullif", "octet_length", "printf", "quote", "random", "randomblob", "replace", "round", "rtrim",
        "sign", "soundex", "sqlite_version", "substr", "substring", "total_changes", "trim", "typeof", "unhex",
        "unicode", "unlikely", "upper", "zeroblob",
        # aggregate
        "avg", "count", "group_concat", "string_agg", "sum", "total",
        # window
        "row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile", "lag", "lead",
        "first_value", "last_value", "nth_value",
        # date and time
        "date", "time", "datetime", "julianday", "unixepoch", "strftime", "timediff",
        "current_date", "current_time", "current_timestamp",
        # JSON
        "json", "json_array", "json_array_length", "json_error_position", "json_extract", "json_insert",
        "json_object", "json_patch", "json_pretty", "json_quote", "json_remove", "json_replace", "json_set",
        "json_type", "json_valid", "json_group_array", "json_group_object", "->", "->>",
        "jsonb", "jsonb_array", "jsonb_extract", "jsonb_insert", "jsonb_object", "jsonb_patch", "jsonb_remove",
        "jsonb_replace", "jsonb_set", "jsonb_group_array", "jsonb_group_object",
        # math
        "acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh", "ceil", "ceiling", "cos", "cosh", "degrees",
        "exp", "floor", "ln", "log", "log10", "log2", "mod", "pi", "pow", "power", "radians", "sin", "sinh",
        "sqrt", "tan", "tanh", "trunc",
        # fts5: the MATCH operator and its auxiliary functions
        "match", "highlight", "snippet", "bm25",
        # used by SQLite's own ALTER TABLE while it rewrites the schema; SQL cannot call them
        "sqlite_rename_column", "sqlite_rename_table", "sqlite_rename_test", "sqlite_rename_quotefix",
        "sqlite_drop_column",
    }
)  # fmt: skip

# Read-only pragmas about the object's own tables (data_version: fts5 reads it for itself).
PRAGMAS = frozenset(
    {
        "table_info",
        "table_xinfo",
        "table_list",
        "index_list",
        "index_info",
        "index_xinfo",
        "foreign_key_list",
        "foreign_key_check",
        "data_version",
    }
)

VIRTUAL_TABLE_MODULES = frozenset({"fts5"})

# Eponymous virtual tables that show SQLite's internals (pages, prepared statements), not the object's data.
_INTERNAL_TABLES = frozenset({"dbstat", "sqlite_dbpage", "sqlite_stmt"})


class UserCodeGuard:
    """SQLite authorizer that is strict only while user code runs, and strictest for its own SQL."""

    def __init__(self) -> None:
        self.user_code_running = False
        self.user_statement = False  # the statement being prepared is the user's (not storage's or solo's)
        self.refused: SqlNotAllowed | None = None  # why the last statement was refused
        self.fts5_allowed = False  # only on a connection in SQLite's defensive mode (see attach)
        self.shadow_tables: frozenset[str] = frozenset()  # fts5's own tables in the file, lower case
        self._statement = ""  # the text of the user statement being run
        self._schema_changed = False  # it created, dropped or renamed a virtual table
        self._conn: sqlite3.Connection | None = None
        self._schema_version: int | None = None

    def attach(self, conn: sqlite3.Connection, *, defensive: bool) -> None:
        """Guard this connection (the instance's, after each open); fts5 only if it is `defensive`."""
        self._conn = conn
        self.fts5_allowed = defensive
        self._schema_version = None
        self.shadow_tables = frozenset()

    @contextlib.contextmanager
    def running_user_code(self) -> Iterator[None]:
        self.refresh()  # a rolled-back call may have brought shadow tables back
        self.user_code_running = True
        try:
            yield
        finally:
            self.user_code_running = False

    def refresh(self) -> None:
        """Read the file's fts5 shadow tables again if its schema changed since the last look."""
        conn = self._conn
        if conn is None:
            return
        version = conn.execute("PRAGMA schema_version").fetchone()[0]
        if version != self._schema_version:
            rows = conn.execute("SELECT name FROM pragma_table_list WHERE type = 'shadow'")
            self.shadow_tables = frozenset(str(name).lower() for (name,) in rows)
            self._schema_version = version

    def __call__(self, action: int, arg1: str | None, arg2: str | None, db: str | None, trigger: str | None) -> int:
        if not self.user_code_running:
            return sqlite3.SQLITE_OK
        if action in _SOLOS_OWN:
            return self._refuse(SqlNotAllowed("statement", _SOLOS_OWN[action], _SOLOS_OWN_REASON))
        if not self.user_statement:
            return sqlite3.SQLITE_OK
        refusal = self._judge(action, arg1 or "", arg2 or "", db or "")
        if refusal is not None:
            return self._refuse(refusal)
        if action in (_A.SQLITE_CREATE_VTABLE, _A.SQLITE_DROP_VTABLE, _A.SQLITE_ALTER_TABLE):
            self._schema_changed = True
        return sqlite3.SQLITE_OK

    def _judge(self, action: int, arg1: str, arg2: str, db: str) -> SqlNotAllowed | None:
        """None if the user's statement may do this; else what is refused and why."""
        if action == _A.SQLITE_FUNCTION:  # arg2: the function's name
            if arg2.lower() in FUNCTIONS:
                return None
            return SqlNotAllowed("function", arg2, "an object's SQL may call SQLite's ordinary functions only")
        if action in _REFUSED_STATEMENTS:
            kind = _REFUSED_STATEMENTS[action]
            return SqlNotAllowed("statement", kind, _TEMP_REASON if "TEMP" in kind else _ANALYZE_REASON)
        if action in _CREATE and db.lower() == "temp":  # CREATE TABLE temp.t: a TEMP table by another name
            return SqlNotAllowed("statement", "CREATE TEMP", _TEMP_REASON)
        for name in (arg1, arg2):
            if name.lower().startswith(SOLO_TABLE_PREFIX):
                return SqlNotAllowed("table", name, "it is one of solo's own tables; use self.storage")
        if action == _A.SQLITE_PRAGMA:  # arg1: the pragma, arg2: its argument
            return None if arg1.lower() in PRAGMAS else _pragma_refused(arg1)
        if action == _A.SQLITE_READ:  # arg1: the table, arg2: the column
            table = arg1.lower()
            if table.startswith("pragma_") and table[len("pragma_") :] not in PRAGMAS:
                return _pragma_refused(arg1[len("pragma_") :])
            if table in _INTERNAL_TABLES:
                return SqlNotAllowed("table", arg1, "it shows SQLite's internals, not the object's data")
            return None
        if action in _STORED_SQL:  # its body is checked where it is used; refuse one that could never be
            mention = _SOLO_NAME.search(self._statement)
            if mention is not None:
                reason = "a view, trigger or full-text index may not refer to solo's own tables"
                return SqlNotAllowed("table", mention[0], reason)
        if action == _A.SQLITE_CREATE_VTABLE:  # arg1: the table, arg2: the module
            return self._judge_module(arg2)
        if action == _A.SQLITE_CREATE_TRIGGER and arg2.lower() in self.shadow_tables:  # arg2: the table
            return SqlNotAllowed("table", arg2, "it belongs to a full-text index, which only fts5 may write")
        if action in _DATA_AND_SCHEMA:
            return None
        return SqlNotAllowed("statement", f"authorizer action {action}", "an object's SQL may not run it")

    def _judge_module(self, module: str) -> SqlNotAllowed | None:
        if module.lower() not in VIRTUAL_TABLE_MODULES:
            return SqlNotAllowed("virtual table module", module, "only fts5 virtual tables are available to objects")
        if not self.fts5_allowed:
            reason = "fts5 needs SQLite's defensive mode, which this Python cannot turn on"
            return SqlNotAllowed("virtual table module", module, reason)
        return None

    def _refuse(self, refusal: SqlNotAllowed) -> int:
        self.refused = refusal
        return sqlite3.SQLITE_DENY

    def user_sql(self, run: Callable[[str], T], sql: str) -> T:
        """Prepare and run a statement of user code under the strict rules."""
        statement = _USER_STATEMENT + sql
        if (
            len(statement) > SQL_LENGTH_LIMIT // 4
            and len(statement.encode("utf-8", "surrogatepass")) > SQL_LENGTH_LIMIT
        ):
            raise SqlTooBig(f"the statement is longer than an object's SQL may be ({SQL_LENGTH_LIMIT} bytes)")
        self.user_statement, self.refused, self._statement, self._schema_changed = True, None, sql, False
        try:
            return run(statement)
        except OverflowError as exc:  # a parameter that is an int past 64 bits, which SQLite cannot bind
            raise SqlTooBig(f"{exc}: an integer in an object's SQL is from -2**63 to 2**63 - 1") from None
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, (SqlNotAllowed, SqlTooBig)):
                raise
            if self.refused is not None:
                raise self.refused from None
            if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_TOOBIG:
                raise too_big(exc) from None
            raise
        finally:
            self.user_statement, self._statement = False, ""
            if self._schema_changed:
                self.refresh()


def too_big(exc: sqlite3.Error) -> SqlTooBig:
    """SQLite's "string or blob too big", as the error an object's caller gets."""
    return SqlTooBig(f"{exc}: a string or blob in an object's SQL has at most {VALUE_LENGTH_LIMIT} bytes")


def _pragma_refused(name: str) -> SqlNotAllowed:
    allowed = ", ".join(sorted(PRAGMAS - {"data_version"}))
    return SqlNotAllowed("pragma", name, f"an object's SQL may read only these pragmas: {allowed}")


class SqlHandle:
    """execute / executemany on the object's connection; rows work by index and by column name."""

    def __init__(self, connection: sqlite3.Connection, guard: UserCodeGuard) -> None:
        self._connection = connection
        self._guard = guard

    def execute(self, sql: str, parameters: Parameters = ()) -> sqlite3.Cursor:
        return self._guard.user_sql(lambda s: self._connection.execute(s, parameters), sql)

    def executemany(self, sql: str, seq_of_parameters: Iterable[Parameters]) -> sqlite3.Cursor:
        return self._guard.user_sql(lambda s: self._connection.executemany(s, seq_of_parameters), sql)

    def cursor(self) -> UserCursor:
        return UserCursor(self._connection.cursor(), self._guard)

    @property
    def total_changes(self) -> int:
        return self._connection.total_changes


class UserCursor:
    """A sqlite3 cursor whose statements are user code's (see UserCodeGuard)."""

    def __init__(self, cursor: sqlite3.Cursor, guard: UserCodeGuard) -> None:
        self._cursor = cursor
        self._guard = guard

    def execute(self, sql: str, parameters: Parameters = ()) -> UserCursor:
        self._guard.user_sql(lambda s: self._cursor.execute(s, parameters), sql)
        return self

    def executemany(self, sql: str, seq_of_parameters: Iterable[Parameters]) -> UserCursor:
        self._guard.user_sql(lambda s: self._cursor.executemany(s, seq_of_parameters), sql)
        return self

    def __iter__(self) -> Iterator[Any]:
        return iter(self._cursor)

    def __getattr__(self, name: str) -> Any:  # fetchone, fetchall, description, rowcount, lastrowid, close...
        return getattr(self._cursor, name)


def split_statements(script: str) -> list[str]:
    """Split an SQL script into complete statements (quotes and comments respected by SQLite).

    Split at every ';' that ends a complete statement, not only at line ends: several
    statements may share a line, and sqlite3 executes one statement at a time.
    """
    statements, current = [], ""
    *pieces, tail = script.split(";")
    for piece in pieces:
        current += piece + ";"
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    current += tail
    if current.strip():
        statements.append(current.strip())
    return [s for s in statements if s.rstrip(";").strip()]
