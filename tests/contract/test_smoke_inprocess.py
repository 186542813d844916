import uuid

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
