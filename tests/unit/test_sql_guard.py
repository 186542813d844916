"""What an object's own SQL may do (objects/sql.py): every statement kind, function and pragma, allowed or refused.

Each case runs as user code through `self.sql` of a real ObjectInstance. A refused
statement fails its call with `sql_not_allowed` and runs nothing; solo's own
statements (storage, schedules) are not held to these rules.
"""

from __future__ import annotations

import sqlite3
import uuid

import pytest

from solo import DurableObject, rpc
from solo.objects.calls import Call, Outcome
from solo.objects.errors import InvalidSettings, SqlNotAllowed, SqlTooBig
from solo.objects.naming import new_call_id, object_id
from solo.objects.runtime.connection import open_connection, set_soft_heap_limit
from solo.objects.runtime.instance import ObjectInstance
from solo.objects.settings import Settings
from solo.objects.sql import MIB, SQL_LENGTH_LIMIT, VALUE_LENGTH_LIMIT, UserCodeGuard, split_statements
from solo.workers.process import limit_sqlite_heap

ALLOWED, REFUSED, FAILS = "allowed", "refused", "fails"  # FAILS: SQLite itself refuses it

# (setup; statement, verdict): the setup statements run first and must pass; the verdict is the last one's.
CASES: list[tuple[str, str]] = [
    # -- data and schema on the object's own tables
    ("SELECT * FROM t", ALLOWED),
    ("INSERT INTO t VALUES (1)", ALLOWED),
    ("INSERT INTO t VALUES (1) RETURNING x", ALLOWED),
    ("REPLACE INTO t VALUES (1)", ALLOWED),
    ("INSERT INTO t VALUES (1); UPDATE t SET x = 2", ALLOWED),
    ("DELETE FROM t", ALLOWED),
    ("INSERT INTO t SELECT value FROM json_each('[1, 2]') WHERE true ON CONFLICT DO NOTHING", ALLOWED),
    (
        "CREATE TABLE u (id INTEGER PRIMARY KEY, t_x REFERENCES t (x), body TEXT NOT NULL CHECK (length(body) < 9))",
        ALLOWED,
    ),
    ("CREATE TABLE IF NOT EXISTS t (x)", ALLOWED),
    ("CREATE TABLE g (a INTEGER, b INTEGER AS (a * 2), c TEXT DEFAULT (datetime('now'))) STRICT", ALLOWED),
    ("CREATE TABLE k (a INTEGER PRIMARY KEY AUTOINCREMENT); INSERT INTO k DEFAULT VALUES", ALLOWED),
    ("DROP TABLE t", ALLOWED),
    ("ALTER TABLE t ADD COLUMN y TEXT", ALLOWED),
    ("ALTER TABLE t RENAME TO t2", ALLOWED),
    ("ALTER TABLE t RENAME COLUMN x TO z", ALLOWED),
    ("ALTER TABLE t ADD COLUMN y TEXT; ALTER TABLE t DROP COLUMN y", ALLOWED),
    ("CREATE INDEX t_x ON t (x)", ALLOWED),
    ("CREATE UNIQUE INDEX t_lx ON t (lower(x)) WHERE x IS NOT NULL", ALLOWED),
    ("CREATE INDEX t_x ON t (x); DROP INDEX t_x", ALLOWED),
    ("CREATE VIEW v AS SELECT x, json_object('x', x) AS j FROM t", ALLOWED),
    ("CREATE VIEW v AS SELECT x FROM t; SELECT * FROM v", ALLOWED),
    ("CREATE VIEW v AS SELECT x FROM t; DROP VIEW v", ALLOWED),
    ("CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET x = x + 1 WHERE rowid = new.rowid; END", ALLOWED),
    ("CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END; DROP TRIGGER tr", ALLOWED),
    ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5) SELECT sum(i) FROM n", ALLOWED),
    ("WITH c AS MATERIALIZED (SELECT x FROM t) SELECT * FROM c", ALLOWED),
    ("VALUES (1), (2)", ALLOWED),
    ("EXPLAIN SELECT * FROM t", ALLOWED),
    ("EXPLAIN QUERY PLAN SELECT * FROM t WHERE x = 1", ALLOWED),
    ("SELECT name, sql FROM sqlite_schema", ALLOWED),
    ("SELECT name FROM sqlite_master WHERE type = 'table'", ALLOWED),
    # -- functions: scalar, aggregate, window, date and time, JSON, math
    (
        "SELECT abs(-1), changes(), char(65), coalesce(NULL, 1), format('%d', 1), glob('a*', 'ab'), hex('a'),"
        " ifnull(NULL, 2), iif(1, 2, 3), instr('ab', 'b'), last_insert_rowid(), length('x'), like('a%', 'ab'),"
        " likelihood(1, 0.5), likely(1), lower('A'), ltrim(' a'), max(1, 2), min(1, 2), nullif(1, 2),"
        " printf('%5.2f', 1), quote('a'), random(), randomblob(4), replace('a', 'a', 'b'), round(1.5),"
        " rtrim('a '), sign(-2), soundex('a'), sqlite_version(), substr('abc', 2), substring('abc', 2),"
        " total_changes(), trim(' a '), typeof(1), unicode('a'), unlikely(1), upper('a'), zeroblob(4),"
        " 'ab' LIKE 'a%', 'ab' GLOB 'a*', 'b' BETWEEN 'a' AND 'c', CAST('1' AS INTEGER), 'a' || 'b',"
        " CASE WHEN 1 THEN 2 END, 1 IN (SELECT x FROM t), EXISTS (SELECT 1), 'a' COLLATE NOCASE = 'A'",
        ALLOWED,
    ),
    ("SELECT count(*), count(x), sum(x), total(x), avg(x), min(x), max(x), group_concat(x, ',') FROM t", ALLOWED),
    ("SELECT count(DISTINCT x) FILTER (WHERE x > 0) FROM t GROUP BY x HAVING count(*) > 0", ALLOWED),
    (
        "SELECT row_number() OVER w, rank() OVER w, dense_rank() OVER w, percent_rank() OVER w,"
        " cume_dist() OVER w, ntile(2) OVER w, lag(x) OVER w, lead(x) OVER w, first_value(x) OVER w,"
        " last_value(x) OVER w, nth_value(x, 1) OVER w, sum(x) OVER w FROM t WINDOW w AS (ORDER BY x)",
        ALLOWED,
    ),
    (
        "SELECT date('now'), time('now'), datetime('now', '+1 day'), julianday('now'), unixepoch('now'),"
        " strftime('%Y-%m-%d', 'now'), current_date, current_time, current_timestamp",
        ALLOWED,
    ),
    (
        "SELECT json('{}'), json_array(1), json_array_length('[1]'), json_extract('{\"a\": 1}', '$.a'),"
        " '{\"a\": 1}' -> '$.a', '{\"a\": 1}' ->> '$.a', json_insert('{}', '$.a', 1), json_object('a', 1),"
        " json_patch('{}', '{}'), json_remove('{}', '$.a'), json_replace('{}', '$.a', 1),"
        " json_set('{}', '$.a', 1), json_type('{}'), json_valid('{}'), json_quote(1)",
        ALLOWED,
    ),
    ("SELECT json_group_array(x), json_group_object('k', x) FROM t", ALLOWED),
    ("SELECT key, value FROM json_each('[1, 2]')", ALLOWED),
    ("SELECT key, fullkey FROM json_tree('{\"a\": [1, 2]}')", ALLOWED),
    (
        "SELECT acos(1), acosh(1), asin(0), asinh(0), atan(0), atan2(0, 1), atanh(0), ceil(1.5), ceiling(1.5),"
        " cos(0), cosh(0), degrees(1), exp(1), floor(1.5), ln(1), log(10), log(2, 8), log10(10), log2(2),"
        " mod(5, 2), pi(), pow(2, 3), power(2, 3), radians(1), sin(0), sinh(0), sqrt(4), tan(0), tanh(0),"
        " trunc(1.5)",
        ALLOWED,
    ),
    # -- read-only pragmas about the object's own tables
    ("PRAGMA table_info(t)", ALLOWED),
    ("PRAGMA main.table_info(t)", ALLOWED),
    ("PRAGMA table_xinfo(t)", ALLOWED),
    ("PRAGMA table_list", ALLOWED),
    ("PRAGMA table_list(t)", ALLOWED),
    ("CREATE INDEX t_x ON t (x); PRAGMA index_list(t)", ALLOWED),
    ("CREATE INDEX t_x ON t (x); PRAGMA index_info(t_x)", ALLOWED),
    ("CREATE INDEX t_x ON t (x); PRAGMA index_xinfo(t_x)", ALLOWED),
    ("PRAGMA foreign_key_list(t)", ALLOWED),
    ("PRAGMA foreign_key_check", ALLOWED),
    ("PRAGMA foreign_key_check(t)", ALLOWED),
    ("PRAGMA data_version", ALLOWED),
    ("SELECT name, type FROM pragma_table_info('t')", ALLOWED),
    ("SELECT s.name, c.name FROM sqlite_schema AS s, pragma_table_info(s.name) AS c WHERE s.name = 't'", ALLOWED),
    # -- full-text search: fts5 and its functions
    ("CREATE VIRTUAL TABLE docs USING fts5(body)", ALLOWED),
    (
        "CREATE VIRTUAL TABLE docs USING fts5(title, body, tokenize = 'porter unicode61');"
        " INSERT INTO docs VALUES ('a', 'hello world'); INSERT INTO docs(docs) VALUES ('optimize');"
        " SELECT highlight(docs, 1, '[', ']'), snippet(docs, 1, '[', ']', '...', 4), bm25(docs)"
        " FROM docs WHERE docs MATCH 'hello' ORDER BY rank",
        ALLOWED,
    ),
    ("CREATE VIRTUAL TABLE docs USING fts5(body); SELECT rowid FROM docs('hello')", ALLOWED),
    (
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);"
        " CREATE VIRTUAL TABLE notes_fts USING fts5(body, content='notes', content_rowid='id');"
        " CREATE TRIGGER notes_ai AFTER INSERT ON notes BEGIN"
        " INSERT INTO notes_fts(rowid, body) VALUES (new.id, new.body); END;"
        " INSERT INTO notes (body) VALUES ('hello there');"
        " SELECT notes.id FROM notes_fts JOIN notes ON notes.id = notes_fts.rowid WHERE notes_fts MATCH 'hello'",
        ALLOWED,
    ),
    ("CREATE VIRTUAL TABLE docs USING fts5(body); ALTER TABLE docs RENAME TO pages", ALLOWED),
    (
        "CREATE VIRTUAL TABLE docs USING fts5(body); INSERT INTO docs VALUES ('a b');"
        " INSERT INTO docs(docs, rank) VALUES ('automerge', 4); INSERT INTO docs(docs) VALUES ('integrity-check');"
        " INSERT INTO docs(docs, rank) VALUES ('merge', 16); INSERT INTO docs(docs) VALUES ('rebuild');"
        " DELETE FROM docs WHERE rowid = 1",
        ALLOWED,
    ),
    (
        "CREATE VIRTUAL TABLE docs USING fts5(body, content=''); INSERT INTO docs(rowid, body) VALUES (1, 'a');"
        " INSERT INTO docs(docs) VALUES ('delete-all')",
        ALLOWED,
    ),
    (
        "CREATE TABLE p (id INTEGER PRIMARY KEY); CREATE TABLE c (p_id REFERENCES p (id) ON DELETE CASCADE);"
        " CREATE VIEW pv AS SELECT * FROM p; INSERT INTO p VALUES (1); INSERT INTO c VALUES (1);"
        " DELETE FROM p; ALTER TABLE p RENAME TO parents; DROP TABLE c",
        ALLOWED,
    ),
    ("CREATE VIRTUAL TABLE docs USING fts5(body); DROP TABLE docs", ALLOWED),
    ("CREATE VIRTUAL TABLE docs USING fts5(body); SELECT count(*) FROM docs_data", ALLOWED),
    # -- transaction control and other databases: solo's
    ("BEGIN", REFUSED),
    ("BEGIN IMMEDIATE", REFUSED),
    ("COMMIT", REFUSED),
    ("END", REFUSED),
    ("ROLLBACK", REFUSED),
    ("SAVEPOINT mine", REFUSED),
    ("RELEASE solo_call", REFUSED),
    ("ROLLBACK TO solo_call", REFUSED),
    ("ATTACH DATABASE ':memory:' AS other", REFUSED),
    ("ATTACH DATABASE 'file:/etc/passwd?mode=ro' AS other", REFUSED),
    ("DETACH DATABASE main", REFUSED),
    ("VACUUM", FAILS),  # SQLite: cannot VACUUM from within a transaction (and ATTACH is refused)
    ("VACUUM INTO '/tmp/copy.sqlite'", FAILS),
    ("CREATE TEMP TABLE tt (x)", REFUSED),
    ("CREATE TABLE temp.tt (x)", REFUSED),
    ("CREATE TEMPORARY VIEW tv AS SELECT 1", REFUSED),
    ("CREATE TEMP TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END", REFUSED),
    ("ANALYZE", REFUSED),
    ("ANALYZE t", REFUSED),
    ("REINDEX", REFUSED),  # it reaches solo's indexes
    ("CREATE INDEX t_x ON t (x); REINDEX t", ALLOWED),
    ("CREATE INDEX t_x ON t (x); REINDEX t_x", ALLOWED),
    # -- solo's own tables
    ("SELECT * FROM _solo_kv", REFUSED),
    ("UPDATE _solo_meta SET value = 99", REFUSED),
    ("CREATE VIEW peek AS SELECT * FROM _solo_calls", REFUSED),
    ("CREATE VIEW peek AS SELECT * FROM [_Solo_Calls]", REFUSED),
    ("CREATE TRIGGER tr AFTER INSERT ON t BEGIN DELETE FROM _solo_kv; END", REFUSED),
    ("CREATE TRIGGER tr AFTER INSERT ON _solo_kv BEGIN SELECT 1; END", REFUSED),
    ("CREATE VIEW v AS SELECT * FROM t; SELECT * FROM v JOIN _solo_kv", REFUSED),
    ("PRAGMA table_info(_solo_meta)", REFUSED),
    ("SELECT * FROM pragma_table_info('_solo_meta')", REFUSED),
    ("CREATE VIRTUAL TABLE leak USING fts5(key, value, content='_solo_kv')", REFUSED),
    ("CREATE VIRTUAL TABLE leak USING fts5(key, value, content='_SOLO_kv')", REFUSED),
    # -- pragmas that change the file, the connection or the whole process, or read SQLite's internals
    ("PRAGMA journal_mode", REFUSED),
    ("PRAGMA journal_mode=DELETE", REFUSED),
    ("PRAGMA wal_checkpoint", REFUSED),
    ("PRAGMA wal_autocheckpoint=1", REFUSED),
    ("PRAGMA synchronous=OFF", REFUSED),
    ("PRAGMA locking_mode=EXCLUSIVE", REFUSED),
    ("PRAGMA hard_heap_limit=200000", REFUSED),
    ("PRAGMA soft_heap_limit=1", REFUSED),
    ("PRAGMA soft_heap_limit", REFUSED),
    ("PRAGMA temp_store_directory='/tmp'", REFUSED),
    ("PRAGMA temp_store=MEMORY", REFUSED),
    ("PRAGMA query_only=1", REFUSED),
    ("PRAGMA schema_version", REFUSED),
    ("PRAGMA schema_version=1", REFUSED),
    ("PRAGMA user_version=1", REFUSED),
    ("PRAGMA application_id=1", REFUSED),
    ("PRAGMA trusted_schema=1", REFUSED),
    ("PRAGMA writable_schema=ON", REFUSED),
    ("PRAGMA cell_size_check=OFF", REFUSED),
    ("PRAGMA cache_size=-1000000", REFUSED),
    ("PRAGMA mmap_size=1000000000", REFUSED),
    ("PRAGMA threads=8", REFUSED),
    ("PRAGMA foreign_keys=OFF", REFUSED),
    ("PRAGMA defer_foreign_keys=ON", REFUSED),
    ("PRAGMA recursive_triggers=OFF", REFUSED),
    ("PRAGMA ignore_check_constraints=ON", REFUSED),
    ("PRAGMA case_sensitive_like=ON", REFUSED),
    ("PRAGMA secure_delete=OFF", REFUSED),
    ("PRAGMA busy_timeout=100000", REFUSED),
    ("PRAGMA max_page_count=1", REFUSED),
    ("PRAGMA page_size=512", REFUSED),
    ("PRAGMA auto_vacuum=FULL", REFUSED),
    ("PRAGMA incremental_vacuum", REFUSED),
    ("PRAGMA shrink_memory", REFUSED),
    ("PRAGMA optimize", REFUSED),
    ("PRAGMA integrity_check", REFUSED),
    ("PRAGMA compile_options", REFUSED),
    ("PRAGMA function_list", REFUSED),
    ("PRAGMA database_list", REFUSED),
    ("PRAGMA legacy_alter_table=ON", REFUSED),
    ("SELECT * FROM pragma_compile_options", REFUSED),
    ("SELECT * FROM pragma_hard_heap_limit", REFUSED),
    # -- functions that reach past the object's data
    ("SELECT hex(fts3_tokenizer('simple'))", REFUSED),
    ("SELECT fts3_tokenizer('simple', x'4141414141414141')", REFUSED),
    ("SELECT load_extension('/tmp/evil.so')", REFUSED),
    ("SELECT sqlite_log(1, 'noise')", REFUSED),
    ("SELECT sqlite_compileoption_used('ENABLE_FTS5')", REFUSED),
    ("SELECT sqlite_compileoption_get(0)", REFUSED),
    ("SELECT fts5(NULL)", REFUSED),
    ("CREATE VIEW v AS SELECT fts3_tokenizer('simple'); SELECT * FROM v", REFUSED),
    # SQLite does not ask the authorizer about DEFAULT expressions: the functions themselves are replaced
    ("CREATE TABLE h (x DEFAULT (fts3_tokenizer('simple'))); INSERT INTO h DEFAULT VALUES", FAILS),
    ("CREATE TABLE h (x DEFAULT (rtreenode(2, x'00'))); INSERT INTO h DEFAULT VALUES", FAILS),
    ("CREATE TABLE h (x DEFAULT (sqlite_compileoption_get(0))); INSERT INTO h DEFAULT VALUES", FAILS),
    ("CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT load_extension('x'); END; INSERT INTO t VALUES (1)", REFUSED),
    # -- virtual tables other than fts5, and SQLite's own introspection tables
    ("CREATE VIRTUAL TABLE boom USING fts3(tokenize=simple)", REFUSED),
    ("CREATE VIRTUAL TABLE boom USING fts4(body)", REFUSED),
    ("CREATE VIRTUAL TABLE boxes USING rtree(id, x0, x1)", REFUSED),
    ("CREATE VIRTUAL TABLE docs USING fts5(body); CREATE VIRTUAL TABLE v USING fts5vocab(docs, 'row')", REFUSED),
    ("CREATE VIRTUAL TABLE j USING json_each('[1]')", REFUSED),
    ("CREATE VIRTUAL TABLE s USING dbstat", REFUSED),
    ("SELECT * FROM dbstat", REFUSED),
    ("SELECT * FROM sqlite_stmt", REFUSED),
    # -- fts5's shadow tables: SQLite's defensive mode keeps them from ordinary SQL, solo their triggers
    ("CREATE VIRTUAL TABLE docs USING fts5(body); UPDATE docs_data SET block = x'00'", FAILS),
    ("CREATE VIRTUAL TABLE docs USING fts5(body); INSERT INTO docs_idx VALUES (9, x'00', 1)", FAILS),
    ("CREATE VIRTUAL TABLE docs USING fts5(body); DELETE FROM docs_config", FAILS),
    ("CREATE VIRTUAL TABLE docs USING fts5(body); DROP TABLE docs_content", FAILS),
    ("CREATE VIRTUAL TABLE docs USING fts5(body); ALTER TABLE docs_docsize RENAME TO mine", FAILS),
    (
        "CREATE VIRTUAL TABLE docs USING fts5(body); CREATE TRIGGER tr AFTER INSERT ON docs_data BEGIN SELECT 1; END",
        REFUSED,
    ),
    (
        "CREATE VIRTUAL TABLE docs USING fts5(body); CREATE TRIGGER tr AFTER DELETE ON DOCS_IDX BEGIN SELECT 1; END",
        REFUSED,
    ),
]


def _case_id(case: tuple[str, str]) -> str:
    return f"{case[1]}: {split_statements(case[0])[-1][:80]}"


def define(prefix: str, **members) -> type[DurableObject]:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    return type(name, (DurableObject,), {"__module__": __name__, "__qualname__": name, **members})


def run_statements(self, statements: list[str]) -> int:
    for statement in statements:
        self.sql.execute(statement).fetchall()
    return len(statements)


def refusal(self, statement: str) -> list[str]:
    try:
        self.sql.execute(statement)
    except SqlNotAllowed as exc:
        return [exc.kind, exc.name, exc.code]
    return []


def too_big(self, statement: str, params: list) -> list:
    try:
        self.sql.execute(statement, params).fetchall()
    except SqlTooBig as exc:
        return [exc.code, isinstance(exc, sqlite3.DataError)]
    return []


Sandboxed = define(
    "Sandboxed",
    migrations=["CREATE TABLE t (x)"],
    run_statements=rpc(run_statements),
    refusal=rpc(refusal),
    too_big=rpc(too_big),
)


@pytest.fixture
def instance(tmp_path):
    name = uuid.uuid4().hex
    made = ObjectInstance(
        Sandboxed, object_id=object_id("test", Sandboxed.__name__, name), name=name, path=tmp_path / "o.sqlite", epoch=1
    )
    made.hydrate()
    yield made
    made.close()


def run(instance: ObjectInstance, method: str, **args) -> Outcome:
    call = Call(
        call_id=new_call_id(),
        object_id=instance.object_id,
        class_name=instance.cls.__name__,
        object_name=instance.name,
        method=method,
        args=args,
    )
    (outcome,) = instance.run_batch([call]).outcomes
    return outcome


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_user_sql_is_allowed_or_refused_as_documented(instance, case):
    script, verdict = case
    *setup, statement = split_statements(script)
    assert run(instance, "run_statements", statements=setup).ok, "the setup must pass"

    outcome = run(instance, "run_statements", statements=[statement])

    if verdict == ALLOWED:
        assert outcome.ok, outcome.error
    elif verdict == REFUSED:
        assert not outcome.ok
        assert (outcome.error["code"], outcome.error["type"]) == ("sql_not_allowed", "SqlNotAllowed"), outcome.error
    else:
        assert not outcome.ok
        assert (outcome.error["code"], outcome.error["type"]) == ("method_error", "OperationalError"), outcome.error
    assert run(instance, "run_statements", statements=["SELECT 1"]).ok  # the object serves on


@pytest.mark.parametrize(
    ("statement", "kind", "name"),
    [
        ("SELECT fts3_tokenizer('simple')", "function", "fts3_tokenizer"),
        ("PRAGMA hard_heap_limit=1", "pragma", "hard_heap_limit"),
        ("SELECT * FROM pragma_hard_heap_limit", "pragma", "hard_heap_limit"),
        ("CREATE VIRTUAL TABLE b USING fts3(x)", "virtual table module", "fts3"),
        ("SELECT * FROM dbstat", "table", "dbstat"),
        ("DELETE FROM _solo_kv", "table", "_solo_kv"),
        ("COMMIT", "statement", "transaction control"),
        ("CREATE TEMP TABLE x (y)", "statement", "CREATE TEMP TABLE"),
        ("ANALYZE", "statement", "ANALYZE"),
    ],
)
def test_a_refusal_names_what_it_refused(instance, statement, kind, name):
    outcome = run(instance, "refusal", statement=statement)

    assert outcome.result == [kind, name, "sql_not_allowed"]
    failed = run(instance, "run_statements", statements=[statement])
    assert name in failed.error["message"]


def test_a_refused_statement_changes_nothing_and_storage_keeps_working(instance):
    def write_then(self, statement: str) -> None:
        self.storage.put("seen", True)
        self.sql.execute("INSERT INTO t VALUES ('from the refused call')")
        self.sql.execute(statement)

    def count(self) -> list:
        self.storage.put("count", self.sql.execute("SELECT count(*) FROM t").fetchone()[0])
        return [self.storage.get("count"), self.storage.get("seen")]

    cls = define("Rollback", migrations=["CREATE TABLE t (x)"], write_then=rpc(write_then), count=rpc(count))
    other = ObjectInstance(cls, object_id="o" * 64, name="n", path=instance.path.with_name("other.sqlite"), epoch=1)
    other.hydrate()
    try:
        assert run(other, "write_then", statement="PRAGMA query_only=1").error["code"] == "sql_not_allowed"
        assert run(other, "count").result == [0, None]
    finally:
        other.close()


def test_a_value_or_a_statement_past_sqlites_limits_fails_with_sql_too_big(instance):
    assert run(instance, "too_big", statement="SELECT randomblob(1e9)", params=[]).result == ["sql_too_big", True]
    assert run(instance, "too_big", statement="SELECT zeroblob(?)", params=[VALUE_LENGTH_LIMIT + 1]).result == [
        "sql_too_big",
        True,
    ]
    long_statement = "SELECT '" + "x" * SQL_LENGTH_LIMIT + "'"
    assert run(instance, "too_big", statement=long_statement, params=[]).result == ["sql_too_big", True]
    failed = run(instance, "run_statements", statements=["SELECT length(randomblob(1e9))"])
    assert (failed.error["code"], failed.error["type"]) == ("sql_too_big", "SqlTooBig")
    assert run(instance, "too_big", statement="SELECT length(zeroblob(?))", params=[VALUE_LENGTH_LIMIT]).result == []


def test_a_result_larger_than_a_recorded_outcome_may_be_fails_the_call_and_the_object_serves_on(instance):
    def big(self, n: int) -> str:
        self.sql.execute("INSERT INTO t VALUES ('from the big call')")
        return "x" * n

    def boom(self, n: int) -> None:
        raise ValueError("x" * n)

    cls = define("Big", migrations=["CREATE TABLE t (x)"], big=rpc(big), boom=rpc(boom))
    other = ObjectInstance(cls, object_id="b" * 64, name="n", path=instance.path.with_name("big.sqlite"), epoch=1)
    other.hydrate()
    try:
        outcome = run(other, "big", n=VALUE_LENGTH_LIMIT)
        assert outcome.error["code"] == "result_too_large" and "more than" in outcome.error["message"]
        raised = run(other, "boom", n=VALUE_LENGTH_LIMIT)
        assert raised.error["code"] == "method_error" and len(raised.error["message"]) < 100_000
        assert run(other, "big", n=10).result == "x" * 10
    finally:
        other.close()


def test_object_connections_are_defensive_and_keep_fts3_tokenizer_away(tmp_path):
    # Without the authorizer: what the connection itself refuses
    conn = open_connection(tmp_path / "raw.sqlite")
    try:
        conn.execute("CREATE VIRTUAL TABLE docs USING fts5(body)")
        conn.execute("INSERT INTO docs VALUES ('hello')")
        with pytest.raises(sqlite3.OperationalError, match="may not be modified"):
            conn.execute("UPDATE docs_data SET block = x'00'")
        with pytest.raises(sqlite3.OperationalError):
            conn.execute("SELECT fts3_tokenizer('simple', x'4141414141414141')")
        with pytest.raises(sqlite3.OperationalError):
            conn.execute("SELECT fts3_tokenizer('simple')")
        conn.execute("PRAGMA writable_schema=ON")
        conn.execute("PRAGMA schema_version=1")  # ignored in defensive mode
        assert conn.execute("PRAGMA schema_version").fetchone()[0] > 1
        assert conn.getlimit(sqlite3.SQLITE_LIMIT_ATTACHED) == 0
        assert conn.getlimit(sqlite3.SQLITE_LIMIT_LENGTH) == VALUE_LENGTH_LIMIT
        assert [tuple(r) for r in conn.execute("SELECT rowid FROM docs WHERE docs MATCH 'hello'")] == [(1,)]
    finally:
        conn.close()


def test_triggers_on_shadow_tables_stay_refused_after_a_rollback_and_a_reopen(instance):
    def trigger_on_shadow_table() -> Outcome:
        return run(
            instance, "run_statements", statements=["CREATE TRIGGER tr AFTER INSERT ON docs_data BEGIN SELECT 1; END"]
        )

    assert run(instance, "run_statements", statements=["CREATE VIRTUAL TABLE docs USING fts5(body)"]).ok
    # a call that drops the index and then fails: its rollback brings the shadow tables back
    assert not run(instance, "run_statements", statements=["DROP TABLE docs", "SELECT * FROM nowhere"]).ok
    assert trigger_on_shadow_table().error["code"] == "sql_not_allowed"
    instance.suspend()
    instance.resume()
    assert trigger_on_shadow_table().error["code"] == "sql_not_allowed"


def test_without_defensive_mode_fts5_is_refused_too(tmp_path):
    conn = sqlite3.connect(tmp_path / "plain.sqlite", isolation_level=None)
    guard = UserCodeGuard()
    conn.set_authorizer(guard)
    guard.attach(conn, defensive=False)
    try:
        with guard.running_user_code(), pytest.raises(SqlNotAllowed, match="defensive mode") as refused:
            guard.user_sql(conn.execute, "CREATE VIRTUAL TABLE docs USING fts5(body)")
        assert (refused.value.kind, refused.value.name) == ("virtual table module", "fts5")
        with guard.running_user_code():
            guard.user_sql(conn.execute, "CREATE TABLE plain (x)")  # everything else as before
    finally:
        conn.close()


def test_a_worker_sets_sqlites_soft_heap_limit_for_its_whole_process():
    previous = set_soft_heap_limit(0)
    try:
        limit_sqlite_heap(Settings(sqlite_soft_heap_bytes=64 * MIB))
        conn = sqlite3.connect(":memory:")  # any connection of the process sees it
        try:
            assert conn.execute("PRAGMA soft_heap_limit").fetchone()[0] == 64 * MIB
        finally:
            conn.close()
        with pytest.raises(InvalidSettings, match="SOLO_SQLITE_SOFT_HEAP_BYTES"):
            Settings.from_env({"SOLO_SQLITE_SOFT_HEAP_BYTES": "-1"})
        assert Settings.from_env({"SOLO_SQLITE_SOFT_HEAP_BYTES": "1000"}).sqlite_soft_heap_bytes == 1000
    finally:
        set_soft_heap_limit(previous)
