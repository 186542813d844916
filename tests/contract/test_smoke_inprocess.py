import uuid
from concurrent.futures import ThreadPoolExecutor

from solo.testing.inprocess import InProcessSystem


def test_a_counter_counts_over_http(settings, redis_client, async_redis_client):
    system = InProcessSystem(settings, redis_client, async_redis_client)
    name = uuid.uuid4().hex
    with system.running() as http:
        first = http.post(f"/v1/objects/Counter/{name}/increment", json={"by": 2})
        second = http.post(f"/v1/objects/Counter/{name}/increment")
    assert first.status_code == 200, first.text
    assert first.json()["result"] == 2
    assert second.json()["result"] == 3


def test_a_worker_keeps_at_most_max_open_databases_files_open(settings, redis_client, async_redis_client):
    system = InProcessSystem(settings.with_changes(max_open_databases=16), redis_client, async_redis_client)
    names = [uuid.uuid4().hex for _ in range(40)]
    with system.running() as http:
        for round_ in (1, 2):  # the second round reopens files the first one had to close
            for name in names:
                response = http.post(f"/v1/objects/Counter/{name}/increment")
                assert response.json()["result"] == round_
                assert len(system.host._open) <= 16
        assert system.host.owned_count == 40  # closed files keep their lease and memory


def test_objects_called_at_once_keep_their_counts_while_files_close_for_room(
    settings, redis_client, async_redis_client
):
    # Given a worker that may keep 16 files open, and 40 objects called from 8 threads at once,
    # so files close for room while other objects' drains run and their wake-ups arrive
    system = InProcessSystem(settings.with_changes(max_open_databases=16), redis_client, async_redis_client)
    names = [uuid.uuid4().hex for _ in range(40)]
    with system.running() as http:

        def increment(name: str) -> int:
            response = http.post(f"/v1/objects/Counter/{name}/increment")
            assert response.status_code == 200, response.text
            return response.json()["result"]

        with ThreadPoolExecutor(8) as pool:
            for _ in range(3):
                list(pool.map(increment, names))
        system.settle()

        # Then every call ran once, in order per object, and nothing is left marked running
        assert [increment(name) for name in names] == [4] * len(names)
        # (a reply leaves before its drain ends: settle, which times out on a drain left marked running)
        system.settle()
        assert len(system.host._open) <= 16
        assert system.host.owned_count == 40
        assert not any(entry.running for entry in system.host._owned.values())
