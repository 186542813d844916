import uuid

from tests.harness import InProcessSystem


def test_a_counter_counts_over_http(settings, redis_client, async_redis_client):
    system = InProcessSystem(settings, redis_client, async_redis_client)
    name = uuid.uuid4().hex
    with system.running() as http:
        first = http.post(f"/v1/objects/Counter/{name}/increment", json={"by": 2})
        second = http.post(f"/v1/objects/Counter/{name}/increment")
    assert first.status_code == 200, first.text
    assert first.json()["result"] == 2
    assert second.json()["result"] == 3
