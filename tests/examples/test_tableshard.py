"""TableShard: a tenant's own SQL, transactions, the guard on solo's tables, the shared summary.

Its behaviour on solo.testing.LocalSystem; its tables across a worker's kill -9 on real processes.
"""

import base64

import pytest

from solo import CallError
from solo.examples.tableshard import SUMMARY_SYNC_EVERY_S, shard_name

CREATE_ORDERS = "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT NOT NULL, total REAL, receipt BLOB)"
SUMMARY = "SELECT shard, tenant, table_name, row_count, synced_ms FROM workersql_shard_summary WHERE tenant = :tenant"


def failure(shard, method, **args) -> tuple[int, str, str]:
    with pytest.raises(CallError) as failed:
        shard.call(method, **args)
    return failed.value.status, failed.value.code, failed.value.message


def test_parameterised_statements_return_columns_and_rows(local):
    shard = local.object("TableShard", "acme")
    shard.execute(sql=CREATE_ORDERS)
    receipt = {"base64": base64.b64encode(b"\x00\x01receipt").decode()}

    inserted = shard.execute(
        sql="INSERT INTO orders (customer, total, receipt) VALUES (?, ?, ?)", params=["ann", 9.5, receipt]
    )
    shard.execute(sql="INSERT INTO orders (customer) VALUES (:who)", params={"who": "bob"})
    result = shard.execute(sql="SELECT id, customer, total, receipt FROM orders ORDER BY id")

    assert inserted == {"columns": [], "rows": [], "rows_affected": 1}
    assert result["columns"] == ["id", "customer", "total", "receipt"]
    assert result["rows"] == [[1, "ann", 9.5, receipt], [2, "bob", None, None]]


def test_a_transaction_commits_all_its_statements_or_none(local):
    shard = local.object("TableShard", "tx")
    shard.execute(sql=CREATE_ORDERS)
    insert = "INSERT INTO orders (id, customer) VALUES (?, ?)"

    results = shard.transaction(
        statements=[{"sql": insert, "params": [1, "ann"]}, {"sql": "SELECT count(*) AS n FROM orders"}]
    )
    status, code, message = failure(
        shard,
        "transaction",
        statements=[
            {"sql": insert, "params": [2, "bob"]},
            {"sql": "UPDATE orders SET total = 1"},
            {"sql": insert, "params": [1, "again"]},
        ],
    )

    assert results[1] == {"columns": ["n"], "rows": [[1]], "rows_affected": 0}
    assert (status, code) == (409, "constraint_violation") and message.startswith("statements[2]: UNIQUE")
    rows = shard.execute(sql="SELECT id, customer, total FROM orders")["rows"]
    assert rows == [[1, "ann", None]]  # the failed transaction's insert and update are gone


def test_bad_sql_is_a_clear_error_and_changes_nothing(local):
    shard = local.object("TableShard", "bad")
    shard.execute(sql=CREATE_ORDERS)
    before = shard.tables()

    assert failure(shard, "execute", sql="SELECT FROM orders WHERE")[:2] == (400, "sql_error")
    assert failure(shard, "execute", sql="SELECT * FROM nowhere")[2] == "statement: no such table: nowhere"
    assert failure(shard, "execute", sql="INSERT INTO orders (customer) VALUES (?)", params=[])[1] == "sql_error"
    assert failure(shard, "execute", sql="SELECT 1; DROP TABLE orders")[1] == "sql_error"
    assert failure(shard, "execute", sql="PRAGMA journal_mode=DELETE")[:2] == (403, "sql_not_allowed")
    assert failure(shard, "execute", sql="SELECT length(randomblob(1e9))")[:2] == (422, "sql_too_big")
    assert failure(shard, "execute", sql="SELECT zeroblob(5000000)")[:2] == (400, "result_too_large")
    assert failure(shard, "execute", sql="SELECT ?", params=[{"hex": "00"}])[1] == "invalid_statement"
    assert failure(shard, "transaction", statements=[])[1] == "invalid_statement"
    assert failure(shard, "transaction", statements=[{"query": "SELECT 1"}])[1] == "invalid_statement"
    assert shard.tables() == before


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM _solo_kv",
        "DELETE FROM _solo_kv",
        'UPDATE "_SOLO_CALLS" SET payload = 1',
        "DROP TABLE _solo_alarms",
        "CREATE VIEW peek AS SELECT * FROM _solo_kv",
    ],
)
def test_statements_on_solos_own_tables_are_refused_and_change_nothing(local, sql):
    shard = local.object("TableShard", "guard")
    shard.execute(sql=CREATE_ORDERS)
    shard.execute(sql="INSERT INTO orders (customer) VALUES ('ann')")  # kept in _solo_kv: last write
    before = shard.tables()

    status, code, message = failure(shard, "transaction", statements=[{"sql": "DELETE FROM orders"}, {"sql": sql}])

    assert (status, code) == (403, "sql_not_allowed") and "_solo_" in message.lower(), message
    assert shard.tables() == before


def test_the_summary_is_synced_to_the_shared_table_on_demand_and_on_schedule(local):
    shard = local.object("TableShard", "sync")
    shard.execute(sql=CREATE_ORDERS)
    shard.execute(sql="INSERT INTO orders (customer) VALUES ('a'), ('b'), ('c')")

    synced = shard.sync_now()

    rows = local.shared.query(SUMMARY, tenant="sync")
    assert rows == [
        {"shard": "sync", "tenant": "sync", "table_name": "orders", "row_count": 3, "synced_ms": synced["synced_ms"]}
    ]
    schedules = {alarm["name"]: alarm for alarm in shard.info()["alarms"]}
    assert schedules["summary-sync"]["method"] == "sync_summary"

    # Then the schedule keeps it current without a call.
    shard.execute(sql="INSERT INTO orders (customer) VALUES ('d')")
    local.clock.advance(seconds=SUMMARY_SYNC_EVERY_S)
    (row,) = local.shared.query(SUMMARY, tenant="sync")
    assert (row["row_count"], row["synced_ms"]) == (4, local.clock())


def test_a_name_that_is_not_a_shard_name_is_refused(local):
    assert failure(local.object("TableShard", "two words"), "tables")[:2] == (400, "invalid_shard_name")


# -- on real processes ----------------------------------------------------------------


def test_tables_report_row_counts_and_last_writes_and_survive_a_worker_restart(solo, api, run_id):
    shard = f"TableShard/{shard_name(f'big-{run_id}', 'customer-42', shards=4)}"
    api.call(shard, "execute", sql=CREATE_ORDERS)
    api.call(shard, "execute", sql="CREATE TABLE notes (body TEXT)")
    api.call(shard, "execute", sql="INSERT INTO orders (customer) VALUES ('a'), ('b')")
    api.call(shard, "execute", sql="DELETE FROM orders WHERE customer = 'nobody'")  # no rows: not a write
    before = api.call(shard, "tables")

    solo.restart_workers()

    assert ":shard-" in shard
    assert [(t["table"], t["rows"]) for t in before] == [("notes", 0), ("orders", 2)]
    assert before[0]["last_write_ms"] is None and before[1]["last_write_ms"] > 0
    assert api.call(shard, "tables") == before
