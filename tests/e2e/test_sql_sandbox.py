"""Untrusted SQL passed through an object (TableShard runs its tenants' SQL) against real worker processes.

Whatever a tenant sends, the worker lives on: SQL outside what an object may run is
refused with 403 `sql_not_allowed` before it runs, a value larger than SQLite's limit
fails with 422 `sql_too_big` before it is allocated, and every other object on the
worker keeps being served.
"""

from __future__ import annotations

import subprocess
import uuid

import httpx

MIB = 1024 * 1024


def shard() -> str:
    return f"/v1/objects/TableShard/t-{uuid.uuid4().hex[:8]}"


def execute(http: httpx.Client, path: str, sql: str, params: list | None = None) -> httpx.Response:
    return http.post(f"{path}/execute", json={"sql": sql, "params": params or []})


def refused(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json().get("error", {}).get("code", "")


def peak_rss_bytes(process: subprocess.Popen) -> int:
    """The most memory the process has held resident since it started (VmHWM)."""
    with open(f"/proc/{process.pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/<pid>/status")


def serves(http: httpx.Client, path: str) -> bool:
    """The object still answers: a write and a read of its own table."""
    execute(http, path, "CREATE TABLE IF NOT EXISTS notes (body TEXT)")
    written = execute(http, path, "INSERT INTO notes VALUES (?)", ["still here"])
    read = execute(http, path, "SELECT count(*) FROM notes")
    return written.status_code == 200 and read.status_code == 200 and read.json()["result"]["rows"][0][0] >= 1


def test_the_fts3_tokenizer_crash_sequence_is_refused_and_the_worker_serves_on(cluster):
    # Given: one worker (a crash would leave nobody to serve) and a tenant's shard
    worker = cluster.start_worker()
    cluster.start_api()
    http = httpx.Client(base_url=cluster.url, timeout=60)
    tenant = shard()
    assert serves(http, tenant)

    # When: the tenant reads the tokenizer's address, swaps in its own, and builds an fts3 table on it
    leak = execute(http, tenant, "SELECT hex(fts3_tokenizer(?))", ["simple"])
    swap = http.post(
        f"{tenant}/transaction",
        json={
            "statements": [
                {"sql": "SELECT fts3_tokenizer(?, ?)", "params": ["simple", {"base64": "QUFBQUFBQUE="}]},
                {"sql": "CREATE VIRTUAL TABLE boom USING fts3(tokenize=simple)"},
            ]
        },
    )
    fts3 = execute(http, tenant, "CREATE VIRTUAL TABLE boom USING fts3(tokenize=simple)")

    # Then: each is refused before it runs, naming what it used, and the same worker serves on
    assert refused(leak) == (403, "sql_not_allowed"), leak.text
    assert "fts3_tokenizer" in leak.json()["error"]["message"]
    assert refused(swap) == (403, "sql_not_allowed"), swap.text
    assert refused(fts3) == (403, "sql_not_allowed"), fts3.text
    assert "fts3" in fts3.json()["error"]["message"]
    assert serves(http, tenant) and serves(http, shard())
    assert worker.poll() is None and cluster.live_workers() == [worker]


PROCESS_WIDE_PRAGMAS = [
    "PRAGMA hard_heap_limit=200000",
    "PRAGMA soft_heap_limit=1",
    "PRAGMA temp_store_directory='/tmp'",
    "PRAGMA query_only=1",
    "PRAGMA schema_version=1",
    "PRAGMA trusted_schema=1",
    "PRAGMA writable_schema=ON",
    "PRAGMA cache_size=-1000000",
    "PRAGMA mmap_size=1000000000",
    "PRAGMA threads=8",
    "SELECT * FROM pragma_hard_heap_limit",
]


def test_settings_that_reach_past_the_object_are_refused_and_every_object_keeps_working(cluster):
    # Given: one worker serving two tenants' shards
    worker = cluster.start_worker()
    cluster.start_api()
    http = httpx.Client(base_url=cluster.url, timeout=60)
    tenant, bystander = shard(), shard()
    assert serves(http, tenant) and serves(http, bystander)

    for pragma in PROCESS_WIDE_PRAGMAS:
        # When: the tenant sends a pragma that would change the worker, the file or its own connection
        response = execute(http, tenant, pragma)

        # Then: it is refused, naming the pragma, and both shards keep being served
        assert refused(response) == (403, "sql_not_allowed"), (pragma, response.text)
        assert serves(http, tenant), pragma
        assert serves(http, bystander), pragma

    assert worker.poll() is None


def test_a_value_larger_than_the_limit_fails_cleanly_without_taking_the_memory(cluster):
    # Given: one worker that has served a call
    worker = cluster.start_worker()
    cluster.start_api()
    http = httpx.Client(base_url=cluster.url, timeout=60)
    tenant = shard()
    assert serves(http, tenant)

    # When: the tenant asks SQLite for a value of a gigabyte, and for values just under the limit
    huge = execute(http, tenant, "SELECT length(randomblob(1e9))")
    zeros = execute(http, tenant, "SELECT length(zeroblob(1e9))")
    within = execute(http, tenant, "SELECT length(randomblob(?))", [16 * MIB])

    # Then: the first two fail with a clear 4xx before anything is allocated, and the worker serves on
    assert refused(huge) == (422, "sql_too_big"), huge.text
    assert refused(zeros) == (422, "sql_too_big"), zeros.text
    assert within.status_code == 200 and within.json()["result"]["rows"] == [[16 * MIB]], within.text
    assert serves(http, tenant)
    assert worker.poll() is None
    assert peak_rss_bytes(worker) < 400 * MIB
