"""What a user finds out about the API from the API, on both backends: /v1/classes, /docs,
close matches of an unknown class, a UserError's details, an rpc named like a client helper,
on_stop() before a graceful eviction, and crossing calls between objects that fail fast."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from solo import DurableObject, UserError, rpc
from solo.api.client import CallError, Client
from solo.api.docs import ASSETS
from solo.objects.coordination.keys import Keys
from solo.objects.coordination.leases import lease_value
from solo.testing.inprocess import InProcessSystem

# Leases that a loaded machine does not let lapse between a call and the eviction asked after it
pytestmark = pytest.mark.system(lease_ttl_ms=15_000)

# Barriers the crossing calls meet at, by test: both outer calls run before either calls the other.
_BARRIERS: dict[str, threading.Barrier] = {}


class SurfaceProbe(DurableObject):
    """A probe of the API's surface.

    More words that /v1/classes leaves out."""

    migrations = ["CREATE TABLE notes (text TEXT NOT NULL)"]

    @rpc
    def greet(self, who: str, times: int = 1, ratio: float | None = None) -> list[str]:
        """Say hello `times` times."""
        return [f"hello {who}"] * times

    @rpc
    def refuse(self, limit: int) -> None:
        raise UserError("over the limit", status=422, code="over_limit", details={"limit": limit, "fields": ["a"]})

    @rpc
    def delete(self, key: str) -> str:
        """An rpc with the name of a client helper (ObjectRef.delete)."""
        return f"deleted {key}"

    @rpc
    def export(self) -> dict[str, str]:
        """An rpc named like the object's GET .../export route and the client's ObjectRef.export."""
        return {"exported": self.name}

    @rpc
    def notes(self) -> list[str]:
        return [r[0] for r in self.sql.execute("SELECT text FROM notes ORDER BY rowid").fetchall()]

    def on_stop(self) -> None:
        self.sql.execute("INSERT INTO notes (text) VALUES ('stopped')")


class FailingStop(DurableObject):
    """An on_stop() that writes, then raises: its write is rolled back, the eviction goes on."""

    migrations = ["CREATE TABLE notes (text TEXT NOT NULL)"]

    @rpc
    def count(self) -> int:
        return self.sql.execute("SELECT count(*) FROM notes").fetchone()[0]

    def on_stop(self) -> None:
        self.sql.execute("INSERT INTO notes (text) VALUES ('stopped')")
        raise RuntimeError("cannot stop cleanly")


# Held by SlowStop.on_stop() until a test lets it go.
_STOP_GATES: dict[str, threading.Event] = {}


class SlowStop(DurableObject):
    """An on_stop() that waits for its test: a slow flush, or a shared database that answers slowly."""

    @rpc
    def ping(self) -> str:
        return "pong"

    def on_stop(self) -> None:
        _STOP_GATES[self.name].wait(60)


class Crossing(DurableObject):
    """Calls another object while that one, serving its own caller, calls it."""

    @rpc
    def cross(self, other: str, barrier: str) -> str:
        _BARRIERS[barrier].wait(timeout=20)  # both outer calls are running now
        return self.objects.get("Crossing", other).hello()

    @rpc
    def hello(self) -> str:
        return f"hello from {self.name}"


def fresh(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_v1_classes_lists_the_served_classes_with_their_methods_and_signatures(system):
    with system.running() as http:
        response = http.get("/v1/classes")
    assert response.status_code == 200, response.text
    classes = {c["name"]: c for c in response.json()["classes"]}
    assert "Counter" in classes and "SurfaceProbe" in classes
    probe = classes["SurfaceProbe"]
    assert probe["doc"] == "A probe of the API's surface." and probe["websockets"] is False
    greet = next(m for m in probe["methods"] if m["name"] == "greet")
    assert greet["signature"] == "greet(who: str, times: int = 1, ratio: float | None = None) -> list[str]"
    assert greet["doc"] == "Say hello `times` times."
    assert [(p["name"], p["required"], p.get("default", "-")) for p in greet["parameters"]] == [
        ("who", True, "-"),
        ("times", False, 1),
        ("ratio", False, None),
    ]
    assert greet["parameters"][2]["schema"] == {"anyOf": [{"type": "number"}, {"type": "null"}]}
    assert greet["result"] == {"type": "array", "items": {"type": "string"}}
    assert classes["Conversation"]["websockets"] is True


def test_an_unknown_class_answers_404_with_the_close_matches(system):
    with system.running() as http:
        response = http.post("/v1/objects/Countr/a/increment")
        method = http.post("/v1/objects/Counter/a/incremnt")
        none_close = http.post("/v1/objects/Zzzzzz/a/increment")
    assert response.status_code == 404
    error = response.json()["error"]
    # The closest first (other tests of this process may have defined more classes like it).
    assert error["code"] == "unknown_class" and error["suggestions"][0] == "Counter"
    assert "did you mean 'Counter'" in error["message"]  # ... or 'SlowCounter'?, when tests/objects.py is loaded
    assert method.status_code == 404 and method.json()["error"]["suggestions"] == ["increment"]
    assert none_close.status_code == 404 and none_close.json()["error"]["suggestions"] == []


def test_a_user_error_carries_its_details_to_http_and_to_the_python_client(system):
    name = fresh("details")
    with system.running() as http:
        response = http.post(f"/v1/objects/SurfaceProbe/{name}/refuse", json={"limit": 3})
        client = Client("http://testserver", transport=http._transport)
        with pytest.raises(CallError) as raised:
            client.object("SurfaceProbe", name).refuse(limit=4)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "over_limit" and error["details"] == {"limit": 3, "fields": ["a"]}
    assert raised.value.code == "over_limit" and raised.value.details == {"limit": 4, "fields": ["a"]}


def test_an_rpc_named_like_a_client_helper_is_called_through_ref_call(system):
    name = fresh("helper")
    with system.running() as http:
        ref = Client("http://testserver", transport=http._transport).object("SurfaceProbe", name)
        assert ref.call("delete", key="k") == "deleted k"
        assert ref.call("export") == {"exported": name}  # POST .../export: the method
        assert ref.export().startswith(b"SQLite format 3")  # GET .../export: the object's file
        assert ref.greet(who="x") == ["hello x"]  # the object exists now: the helper deletes it
        assert ref.delete() is True


def test_docs_serves_the_api_page_and_its_files_offline(system):
    with system.running() as http:
        page = http.get("/docs")
        assets = {name: http.get(f"/docs/{name}") for name in ASSETS}
        missing = http.get("/docs/..%2Fpyproject.toml")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'url: "/openapi.json"' in page.text and "//" not in page.text.replace("://", "")  # no other host
    for name, response in assets.items():
        assert response.status_code == 200, name
        assert f"/docs/{name}" in page.text or name.endswith(".png")
    assert "SwaggerUIBundle" in assets["swagger-ui-bundle.js"].text
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_on_stop_runs_before_an_operator_eviction_and_its_writes_are_kept(system):
    name = fresh("stop")
    with system.running() as http:
        assert http.post(f"/v1/objects/SurfaceProbe/{name}/notes").json()["result"] == []
        assert http.post(f"/v1/objects/SurfaceProbe/{name}/evict").json() == {"evicting": True}
        # The next call hydrates it afresh from the durable state, on_stop()'s write included
        notes = http.post(f"/v1/objects/SurfaceProbe/{name}/notes").json()["result"]
        while notes == []:  # the eviction ran after the call that asked for it: wait for it
            notes = http.post(f"/v1/objects/SurfaceProbe/{name}/notes").json()["result"]
    assert notes == ["stopped"]


def test_an_on_stop_that_raises_changes_nothing_and_the_object_is_evicted_all_the_same(system):
    name = fresh("failing")
    with system.running() as http:
        assert http.post(f"/v1/objects/FailingStop/{name}/count").json()["result"] == 0
        assert http.post(f"/v1/objects/FailingStop/{name}/evict").json() == {"evicting": True}
        info = http.get(f"/v1/objects/FailingStop/{name}").json()
        while info["active"]:  # the eviction runs after the call that asked for it
            info = http.get(f"/v1/objects/FailingStop/{name}").json()
        assert http.post(f"/v1/objects/FailingStop/{name}/count").json()["result"] == 0
        assert http.get(f"/v1/objects/FailingStop/{name}").json()["epoch"] == info["epoch"] + 1  # hydrated anew


def test_on_stop_runs_when_the_worker_drains(settings, redis_client, async_redis_client):
    name = fresh("drain")
    settings = settings.with_changes(lease_ttl_ms=15_000)  # not lapsing on a loaded machine before the drain
    with InProcessSystem(settings, redis_client, async_redis_client).running() as http:
        assert http.post(f"/v1/objects/SurfaceProbe/{name}/notes").json()["result"] == []
    # The host stopped (a graceful drain); a new one hydrates the object from the shared database
    with InProcessSystem(settings, redis_client, async_redis_client).running() as http:
        assert http.post(f"/v1/objects/SurfaceProbe/{name}/notes").json()["result"] == ["stopped"]


def test_every_object_is_handed_off_with_its_on_stop_when_a_worker_holding_more_than_its_open_files_drains(
    settings, redis_client, async_redis_client
):
    # Given a worker that keeps 16 files open holding 40 objects (stops release several at a time,
    # and reopening one file for its on_stop() closes another's)
    names = [fresh("drained") for _ in range(40)]
    settings = settings.with_changes(lease_ttl_ms=15_000, max_open_databases=16)
    with InProcessSystem(settings, redis_client, async_redis_client).running() as http:
        for name in names:
            assert http.post(f"/v1/objects/SurfaceProbe/{name}/notes").json()["result"] == []
        ids = [object_id_of(http, "SurfaceProbe", name) for name in names]
    # Then each gave its lease back, and had run on_stop() once and shipped it
    keys = Keys(settings.key_prefix)
    assert not any(redis_client.exists(keys.lease(object_id)) for object_id in ids)
    with InProcessSystem(settings, redis_client, async_redis_client).running() as http:
        for name in names:
            assert http.post(f"/v1/objects/SurfaceProbe/{name}/notes").json()["result"] == ["stopped"]


def test_an_idle_eviction_runs_off_the_lease_maintainer_so_a_slow_on_stop_holds_no_lease_up(system):
    name = fresh("slowstop")
    gate = _STOP_GATES[name] = threading.Event()
    try:
        with system.running() as http:
            assert http.post(f"/v1/objects/SlowStop/{name}/ping").json()["result"] == "pong"
            entry = system.host._owned[object_id_of(http, "SlowStop", name)]  # noqa: SLF001
            entry.last_active -= system.settings.idle_evict_s + 1  # idle for longer than the limit
            # The maintainer's step: it queues the eviction and returns while on_stop() still waits
            # (done inline, this call would wait the 60 s of the gate).
            system.host._evict_idle()  # noqa: SLF001
            assert entry.closing and not gate.is_set()
            system.host._keep_leases_alive()  # noqa: SLF001 - the next step keeps every lease alive meanwhile
            assert not entry.gone
            gate.set()
            info = http.get(f"/v1/objects/SlowStop/{name}").json()
            while info["active"]:  # the evictor finishes once on_stop() returns
                info = http.get(f"/v1/objects/SlowStop/{name}").json()
    finally:
        gate.set()
        _STOP_GATES.pop(name, None)


def test_a_lost_lease_is_closed_off_the_lease_maintainer_so_a_slow_database_holds_no_lease_up(system, redis_client):
    name = fresh("lost")
    with system.running() as http:
        assert http.post(f"/v1/objects/SlowStop/{name}/ping").json()["result"] == "pong"
        # The worker was paused past its heartbeat's TTL, and another took the object meanwhile;
        # the stop's record waits, as on a locked or slow database.
        entry, closing, closed = taken_while_paused_with_a_slow_close(system, redis_client, http, "SlowStop", name)
        # The maintainer's step finds the heartbeat lapsed, the lease taken, and returns while the close still waits.
        system.host._keep_leases_alive()  # noqa: SLF001
        assert entry.lost and closing.wait(60)
        closed.set()
        while system.host.owns(entry.object_id):  # the evictor finishes the close
            threading.Event().wait(0.01)


def test_an_object_called_while_its_lost_lease_closes_here_is_taken_again_only_once_its_file_is_closed(
    system, redis_client
):
    # Given a counter at 1 whose lease was taken while its worker was paused, its close still running
    name = fresh("retaken")
    with system.running() as http:
        assert http.post(f"/v1/objects/Counter/{name}/increment").json()["result"] == 1
        entry, closing, closed = taken_while_paused_with_a_slow_close(system, redis_client, http, "Counter", name)
        object_id, keys = entry.object_id, Keys(system.settings.key_prefix)
        answers: list = []
        try:
            system.host._keep_leases_alive()  # noqa: SLF001
            assert closing.wait(60)

            # When the other worker lets it go having shipped nothing, and a call reaches this worker
            redis_client.delete(keys.lease(object_id))
            caller = threading.Thread(target=lambda: answers.append(http.post(f"/v1/objects/Counter/{name}/increment")))
            caller.start()
            deadline = time.monotonic() + 60
            while not entry.wanted and system.host._owned.get(object_id) in (None, entry):  # noqa: SLF001
                assert time.monotonic() < deadline, "the call never reached the worker"
                time.sleep(0.005)

            # Then no new activation of it starts here (rebuilding its file) while the old one still has
            # it open; it is taken again once the close ends, and the call runs once, on the state it had
            assert system.host._owned.get(object_id) is entry  # noqa: SLF001
        finally:
            closed.set()
        caller.join(60)
        assert answers[0].status_code == 200, answers[0].text
        assert answers[0].json()["result"] == 2
        assert http.post(f"/v1/objects/Counter/{name}/increment").json()["result"] == 3


def taken_while_paused_with_a_slow_close(system, redis_client, http, class_name: str, name: str):
    """The object's lease taken by another worker while this one's heartbeat had lapsed (a pause), and
    its close held until the test sets `closed`: (the host's entry, closing, closed)."""
    object_id = object_id_of(http, class_name, name)
    entry = system.host._owned[object_id]  # noqa: SLF001
    closing, closed = threading.Event(), threading.Event()
    close = entry.activation.close

    def slow_close(**kwargs) -> None:
        closing.set()
        assert closed.wait(60)
        close(**kwargs)

    entry.activation.close = slow_close
    keys = Keys(system.settings.key_prefix)
    redis_client.delete(keys.alive(system.host.worker_id))
    redis_client.set(keys.lease(object_id), lease_value("another-worker", "g1"))
    return entry, closing, closed


def object_id_of(http, class_name: str, name: str) -> str:
    return http.get(f"/v1/objects/{class_name}/{name}").json()["id"]


def test_crossing_calls_between_two_chains_fail_fast_with_call_cycle(system):
    # Given A and B each serving an outside call at the same time
    a, b, barrier = fresh("a"), fresh("b"), fresh("barrier")
    _BARRIERS[barrier] = threading.Barrier(2)
    answers: dict[str, object] = {}
    with system.running() as http:

        def outer(name: str, other: str) -> None:
            answers[name] = http.post(f"/v1/objects/Crossing/{name}/cross", json={"other": other, "barrier": barrier})

        threads = [threading.Thread(target=outer, args=pair) for pair in ((a, b), (b, a))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    # When each calls the other: one of them closes a cycle across the two chains
    statuses = sorted(r.status_code for r in answers.values())  # type: ignore[attr-defined]
    # Then it is refused at once with call_cycle naming the cycle, instead of both waiting out
    # the timeout (504); the other gets its answer once the refused call has finished
    assert statuses in ([200, 508], [508, 508]), statuses
    refused = [r.json()["error"] for r in answers.values() if r.status_code == 508]  # type: ignore[attr-defined]
    assert refused[0]["code"] == "call_cycle"
    assert f"Crossing/{a} -> Crossing/{b} -> Crossing/{a}" in refused[0]["message"] or (
        f"Crossing/{b} -> Crossing/{a} -> Crossing/{b}" in refused[0]["message"]
    )
