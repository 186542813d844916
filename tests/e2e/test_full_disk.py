"""A worker whose data directory fills up lets the object go; another worker, with room, serves it.

Worker A keeps its objects' files on a small tmpfs of the test's own (mounted here: the test
runs as root, as CI does); worker B on the ordinary disk. An object owned by A grows past the
tmpfs: the commit that does not fit fails, A abandons that batch uncommitted, reports it (an
ERROR line, with `error: disk_full` in its JSON), frees the space and leaves the object to
others; B serves it from the durable state. Nothing acknowledged is lost, nothing is
applied twice, and the state B serves is exactly the acknowledged writes.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import uuid

import httpx
import pytest

from tests.e2e.conftest import history

TMPFS_BYTES = 2 * 1024 * 1024
GROW_KIB = 256  # per call; about ten of them do not fit (the WAL holds them again until its checkpoint)
CALLS = 10


@pytest.fixture
def small_disk(cluster, tmp_path):
    """A 2 MiB tmpfs for one worker's data directory; unmounted after the cluster's processes stopped."""
    if os.geteuid() != 0:
        pytest.fail("mounting a tmpfs needs root (CI runs the tests as root)")
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES}", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        cluster.stop()  # nothing may hold a file there any more
        subprocess.run(["umount", str(mount)], check=True)


def json_lines(text: str) -> list[dict]:
    lines = []
    for line in text.splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            continue
    return lines


def test_an_object_that_outgrows_its_workers_disk_moves_to_a_worker_with_room(
    cluster, cluster_env, small_disk, tmp_path
):
    # Given: worker A on the small disk owns a Bulky object, then worker B (plenty of room) starts
    a = cluster.start_worker(SOLO_DATA_DIR=str(small_disk), SOLO_LOG_FORMAT="json")
    cluster.start_api()
    name = f"full-{uuid.uuid4().hex[:8]}"
    http = httpx.Client(base_url=cluster.url, timeout=90)
    assert http.post(f"/v1/objects/Bulky/{name}/touch", json={}).json()["result"] == 1
    b = cluster.start_worker()
    a_id, b_id = cluster.worker_ids

    # When: the object grows, one acknowledged call after another, past A's disk
    answers = []
    for _ in range(CALLS):
        response = http.post(f"/v1/objects/Bulky/{name}/grow", json={"kib": GROW_KIB})
        assert response.status_code == 200, response.text
        answers.append(response.json()["result"])

    # Then: every call was applied once, in order (each answers the rows so far) ...
    assert answers == [GROW_KIB * (i + 1) for i in range(CALLS)]
    # ... A ran out of room while it held a batch (the fault hit work in flight), said so in a
    # machine-readable line, and lives on; the batch was abandoned, not answered with an error
    reports = [r for r in json_lines(cluster.log("worker0")) if r.get("error") == "disk_full"]
    assert reports, cluster.log("worker0")[-3000:]
    assert reports[0]["level"] == "ERROR" and reports[0]["object"] == f"Bulky/{name}"
    assert a.poll() is None and b.poll() is None
    # ... B took the object over after A, and serves it
    owners = [h.worker_id for h in history(cluster_env, "Bulky", name)]
    assert owners[0] == a_id and owners[-1] == b_id, owners
    assert http.post(f"/v1/objects/Bulky/{name}/touch", json={}).json()["result"] == 2
    # ... A freed what the object's file took: its directory holds no database any more
    assert not list(small_disk.rglob("*.sqlite*"))
    # ... and the durable state is sound and is exactly the acknowledged writes
    export = http.get(f"/v1/objects/Bulky/{name}/export")
    assert export.status_code == 200
    path = tmp_path / "exported.sqlite"
    path.write_bytes(export.content)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT count(*) FROM filler").fetchone()[0] == GROW_KIB * CALLS
    assert conn.execute("SELECT value FROM cell").fetchone()[0] == 2
    conn.close()
