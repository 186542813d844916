"""Imported files are untrusted: nothing in one runs, or names a path or a Redis key, in a real API or worker.

Each hostile file is a real object's export, edited with sqlite3 the way anyone
could edit a file before PUTting it back. The API refuses it (422 invalid_image,
saying why) without running anything in it. Where the worker is concerned, the
same file is also written straight into the shared database, as an import made
before these checks existed (or a restore of one) would have left it: the
worker drops the bad rows instead of acting on them.
"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import httpx
import pytest
import redis

from solo.objects.calls import Call
from solo.objects.coordination.keys import Keys
from solo.objects.coordination.mailbox import encode_entry
from solo.objects.naming import new_call_id, object_id
from solo.objects.state.images import without_epoch_stamp
from solo.objects.state.schema import make_engine
from solo.objects.state.store import StateStore
from tests.e2e.conftest import wait_until

OCTET = {"Content-Type": "application/octet-stream"}
SENT_ID = "o" + "1" * 31  # the shape of a sent call's id (objects/remote.py derived_call_id)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def export(http: httpx.Client, ref: str) -> bytes:
    response = http.get(f"/v1/objects/{ref}/export")
    assert response.status_code == 200, response.text
    return response.content


def edited(image: bytes, tmp_path: Path, *statements: tuple[str, tuple]) -> bytes:
    """The file after running `statements` on it with the sqlite3 module, as an attacker would."""
    file = tmp_path / f"{uuid.uuid4().hex}.sqlite"
    file.write_bytes(image)
    conn = sqlite3.connect(file)
    for sql, params in statements:
        conn.execute(sql, params)
    conn.commit()
    conn.close()
    return file.read_bytes()


def refused(response: httpx.Response, *words: str) -> str:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_image", error
    for word in words:
        assert word in error["message"], error["message"]
    return error["message"]


def put_import(http: httpx.Client, ref: str, image: bytes) -> httpx.Response:
    return http.put(f"/v1/objects/{ref}/import", content=image, headers=OCTET)


def outbox_row(call: Call) -> tuple[str, tuple]:
    return ("INSERT INTO _solo_outbox (call_id, call, created_ms) VALUES (?, ?, 0)", (call.call_id, call.to_json()))


def sent_call(target_id: str, class_name: str, name: str, call_id: str = SENT_ID, **extra) -> Call:
    return Call(call_id, target_id, class_name, name, "add", {"tag": "hostile"}, **extra)


def plant(cluster_env: dict[str, str], ref: str, image: bytes) -> None:
    """Make `image` the object's state without the import's checks (as an older solo's import did)."""
    class_name, name = ref.split("/")
    namespace = cluster_env["SOLO_NAMESPACE"]
    engine = make_engine(cluster_env["DATABASE_URL"], connections=1)
    try:
        oid = object_id(namespace, class_name, name)
        StateStore(engine).replace(oid, namespace, class_name, name, without_epoch_stamp(image))
    finally:
        engine.dispose()


@pytest.fixture
def http(cluster):
    cluster.start_worker()
    cluster.start_api()
    with httpx.Client(base_url=cluster.url, timeout=60) as client:
        yield client


@pytest.fixture
def plain_redis(cluster_env):
    client = redis.Redis.from_url(cluster_env["REDIS_URL"])
    yield client
    client.close()


# -- outbox rows: no path -------------------------------------------------------------


@pytest.fixture
def victims(tmp_path):
    """Files outside the data directory, and two "object ids" that name them.

    One id is relative (SOLO_DATA_DIR/workers/<worker>/.. then ../../outside); the other
    absolute, through a short link (the shared `objects.id` column holds 32 characters).
    """
    outside = tmp_path / "outside"
    outside.mkdir()
    link = Path(f"/tmp/solo-{uuid.uuid4().hex[:8]}")
    link.symlink_to(outside)
    for victim in ("relative", "absolute"):
        (outside / f"{victim}.sqlite").write_bytes(b"precious, not a database")
    try:
        yield ["../../outside/relative", f"{link}/absolute"], outside
    finally:
        link.unlink()


def files_in(folder: Path) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in sorted(folder.iterdir())}


def test_an_outbox_row_naming_a_path_is_refused_and_no_file_outside_the_data_directory_is_touched(
    http, tmp_path, victims
):
    # Given: a real Relay's export with outbox rows whose target "object id" is a path
    paths, outside = victims
    before = files_in(outside)
    source = unique("Relay/src")
    assert http.post(f"/v1/objects/{source}/log").status_code == 200
    image = export(http, source)
    for path in paths:
        hostile = edited(image, tmp_path, outbox_row(sent_call(path, "Tally", "t")))

        # When: it is imported
        target = unique("Relay/imp")
        response = put_import(http, target, hostile)

        # Then: refused, naming the table and the problem; nothing was stored or touched
        refused(response, "_solo_outbox", "object_id")
        assert http.get(f"/v1/objects/{target}").status_code == 404
        assert http.post(f"/v1/objects/{target}/log").json()["result"] == []
    assert files_in(outside) == before


def test_a_worker_drops_outbox_rows_naming_paths_that_reached_the_shared_database(
    http, cluster, cluster_env, tmp_path, victims
):
    # Given: the same hostile rows already made an object's state (before imports were checked)
    paths, outside = victims
    before = files_in(outside)
    source, target = unique("Relay/src"), unique("Relay/old")
    assert http.post(f"/v1/objects/{source}/log").status_code == 200
    rows = [outbox_row(sent_call(p, "Tally", f"t{i}", call_id=f"o{i}" + "0" * 30)) for i, p in enumerate(paths)]
    plant(cluster_env, target, edited(export(http, source), tmp_path, *rows))

    # When: a worker hydrates it (and would send what its outbox holds)
    assert http.post(f"/v1/objects/{target}/log").json()["result"] == []

    # Then: the worker drops the rows and says so; it never acted on the paths
    wait_until(
        lambda: cluster.log("worker0").count("dropped") >= 2 or files_in(outside) != before, 30, "the rows dropped"
    )
    assert files_in(outside) == before
    assert "_solo_outbox" in cluster.log("worker0")
    assert http.post(f"/v1/objects/{target}/log").json()["result"] == []  # and it serves on


# -- outbox rows: no Redis key --------------------------------------------------------


class _Keys:
    """A sentinel list outside solo's keys and a call queued for another object, and how they look."""

    def __init__(self, client: redis.Redis, prefix: str, namespace: str) -> None:
        self.client = client
        self.sentinel = f"sentinel-{uuid.uuid4().hex}"
        other = unique("other")
        other_id = object_id(namespace, "Tally", other)
        self.mailbox = Keys(prefix).mailbox(other_id)
        queued = Call(new_call_id(), other_id, "Tally", other, "add", {"tag": "queued"})
        client.rpush(self.sentinel, "keep")
        client.rpush(self.mailbox, encode_entry(queued))  # queued; nobody was asked to run it
        self.before = self.state()

    def state(self) -> list:
        return [(self.client.lrange(k, 0, -1), self.client.ttl(k)) for k in (self.sentinel, self.mailbox)]

    def rows(self, namespace: str, tally: str) -> list[tuple[str, tuple]]:
        """Sends to a real Tally whose replies would go to the sentinel and the other mailbox."""
        tally_id = object_id(namespace, "Tally", tally)
        return [
            outbox_row(sent_call(tally_id, "Tally", tally, call_id="o" + "2" * 31, reply_to=self.sentinel)),
            outbox_row(sent_call(tally_id, "Tally", tally, call_id="o" + "3" * 31, reply_to=self.mailbox)),
        ]

    def cleanup(self) -> None:
        self.client.delete(self.sentinel)


@pytest.fixture
def foreign_keys(plain_redis, cluster_env):
    keys = _Keys(plain_redis, cluster_env["SOLO_KEY_PREFIX"], cluster_env["SOLO_NAMESPACE"])
    yield keys
    keys.cleanup()


def test_an_outbox_row_with_a_reply_key_is_refused_and_no_foreign_redis_key_is_touched(
    http, cluster_env, tmp_path, foreign_keys
):
    source, tally = unique("Relay/src"), unique("t")
    assert http.post(f"/v1/objects/{source}/log").status_code == 200
    hostile = edited(export(http, source), tmp_path, *foreign_keys.rows(cluster_env["SOLO_NAMESPACE"], tally))

    refused(put_import(http, unique("Relay/imp"), hostile), "_solo_outbox", "reply_to")

    assert http.post(f"/v1/objects/Tally/{tally}/total").json()["result"] == 0
    assert foreign_keys.state() == foreign_keys.before


def test_a_worker_drops_outbox_rows_with_reply_keys_that_reached_the_shared_database(
    http, cluster, cluster_env, tmp_path, foreign_keys
):
    # Given: an object whose durable state holds sends with chosen reply keys
    source, target, tally = unique("Relay/src"), unique("Relay/old"), unique("t")
    assert http.post(f"/v1/objects/{source}/log").status_code == 200
    rows = foreign_keys.rows(cluster_env["SOLO_NAMESPACE"], tally)
    plant(cluster_env, target, edited(export(http, source), tmp_path, *rows))

    # When: a worker hydrates it, and then it sends the same Tally a real call
    response = http.post(f"/v1/objects/{target}/tell", json={"target": f"Tally/{tally}", "tags": ["real"]})
    assert response.status_code == 200, response.text
    # (a hostile send, enqueued at hydrate, would be in the Tally's mailbox before the real one)
    wait_until(lambda: "real" in http.post(f"/v1/objects/Tally/{tally}/tags").json()["result"], 30, "the real send")

    # Then: only the real call arrived, and the sentinel and the other object's queued call are intact
    assert http.post(f"/v1/objects/Tally/{tally}/tags").json()["result"] == ["real"]
    assert foreign_keys.state() == foreign_keys.before
    assert "dropped" in cluster.log("worker0")


# -- triggers -----------------------------------------------------------------------------

ENDLESS = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n"


def test_an_endless_trigger_in_an_import_never_runs_in_the_api(http, tmp_path):
    # Given: a Counter's export with a never-ending trigger on solo's metadata (the epoch's
    # removal, a DELETE, used to fire it)
    source = unique("Counter/src")
    assert http.post(f"/v1/objects/{source}/increment").status_code == 200
    image = export(http, source)
    for when in ("BEFORE DELETE", "AFTER UPDATE", "BEFORE INSERT"):
        trigger = f"CREATE TRIGGER spin_{when.split()[1].lower()} {when} ON _solo_meta BEGIN {ENDLESS}; END"
        hostile = edited(image, tmp_path, (trigger, ()))

        # When: it is imported, six times over (more than the API's threads once pinned)
        for _ in range(6):
            # Then: each answers 422 at once (the client's timeout is far off), naming the trigger
            refused(put_import(http, unique("Counter/imp"), hostile), "trigger", "_solo_meta")

    # and the API keeps serving
    assert http.get("/healthz").status_code == 200
    assert http.post(f"/v1/objects/{source}/increment").json()["result"] == 2


def test_a_trigger_on_solo_calls_is_refused_and_never_runs_in_the_worker(http, tmp_path):
    source, target = unique("Tally/src"), unique("Tally/imp")
    assert http.post(f"/v1/objects/{source}/add", json={"tag": "mine"}).status_code == 200
    trigger = "CREATE TRIGGER rewrite AFTER INSERT ON _solo_calls BEGIN UPDATE received SET tag = 'rewritten'; END"
    hostile = edited(export(http, source), tmp_path, (trigger, ()))

    refused(put_import(http, target, hostile), "trigger", "_solo_calls")

    assert http.post(f"/v1/objects/{target}/add", json={"tag": "a"}).json()["result"] == 1
    assert http.post(f"/v1/objects/{target}/add", json={"tag": "b"}).json()["result"] == 2
    assert http.post(f"/v1/objects/{target}/tags").json()["result"] == ["a", "b"]
    assert http.post(f"/v1/objects/{source}/tags").json()["result"] == ["mine"]


# -- alarms and metadata --------------------------------------------------------------------


def test_an_imported_alarm_row_naming_a_method_no_schedule_may_call_is_refused(http, tmp_path):
    source = unique("Alarmed/src")
    assert http.post(f"/v1/objects/{source}/listing").status_code == 200
    image = export(http, source)
    for method in ("__class__", "_record", "on_start", "no_such_method"):
        row = (
            "INSERT INTO _solo_alarms (name, method, kwargs, start_ms, every_ms, missed, grace_ms, scheduled_ms,"
            " next_ms, created_ms) VALUES ('evil', ?, '{}', 0, 1000, 'fire_once', 0, 0, 0, 0)",
            (method,),
        )
        target = unique("Alarmed/imp")
        refused(put_import(http, target, edited(image, tmp_path, row)), "_solo_alarms", method)
        assert http.get(f"/v1/objects/{target}").status_code == 404
    listed = http.get("/v1/alarms").json()
    assert not [a for a in listed.get("alarms", []) if a.get("name") == "evil"], listed


def test_a_negative_or_non_integer_schema_version_is_refused(http, tmp_path):
    source, existing = unique("Counter/src"), unique("Counter/old")
    assert http.post(f"/v1/objects/{source}/increment").status_code == 200
    assert http.post(f"/v1/objects/{existing}/increment", json={"by": 7}).status_code == 200
    image = export(http, source)
    for version in (-1, 1.5, "one", b"\x01", 2**40):
        hostile = edited(image, tmp_path, ("UPDATE _solo_meta SET value = ? WHERE key = 'schema_version'", (version,)))
        for target in (unique("Counter/imp"), existing):
            refused(put_import(http, target, hostile), "schema_version")
    assert http.post(f"/v1/objects/{existing}/get").json()["result"] == 7
    fresh = unique("Counter/imp")
    assert put_import(http, fresh, image).status_code == 200  # the unedited export imports
    assert http.post(f"/v1/objects/{fresh}/get").json()["result"] == 1
