"""Results over HTTP, from real processes: delivered whole up to SOLO_MAX_RESULT_BYTES, refused past it.

Past the limit the call is answered 500 `result_too_large`, saying the size and the
limit, and nothing it wrote is kept. Up to it the result arrives whole, on the real
Redis and on the embedded one of `solo dev` (`make run`), whose replies of more than
its socket's buffer used to be lost: the call completed and its caller got 504.
"""

from __future__ import annotations

import uuid

import httpx

from tests import REPO

MIB = 1024 * 1024
# SOLO_MAX_RESULT_BYTES of the processes under test. Results of 16 MiB were lost by the
# embedded Redis every time (smaller ones only while its connection's buffers were small).
LIMIT = 20 * MIB


def unique() -> str:
    return f"Fragile/{uuid.uuid4().hex[:12]}"


def add_and_return(http: httpx.Client, ref: str, text: str, kib: int) -> httpx.Response:
    return http.post(f"/v1/objects/{ref}/add_and_return", json={"text": text, "kib": kib})


def count(http: httpx.Client, ref: str) -> int:
    response = http.post(f"/v1/objects/{ref}/count")
    assert response.status_code == 200, response.text
    return response.json()["result"]


def check_the_limit(http: httpx.Client) -> None:
    ref = unique()

    # A 16 MiB result, within the limit: delivered whole
    response = add_and_return(http, ref, "kept", 16 * 1024)
    assert response.status_code == 200, response.text[:300]
    assert response.json()["result"] == "r" * (16 * MIB)

    # One of the limit exactly (its JSON has two quotes): delivered too
    response = add_and_return(http, ref, "kept too", LIMIT // 1024 - 1)
    assert response.status_code == 200, response.text[:300]
    assert len(response.json()["result"]) == LIMIT - 1024

    # Past the limit: 500 result_too_large, saying how large and what the limit is
    response = add_and_return(http, ref, "rolled back", 21 * 1024)
    assert response.status_code == 500, response.text[:300]
    error = response.json()["error"]
    assert error["code"] == "result_too_large", error
    assert f"{21 * MIB + 2} bytes of JSON" in error["message"]
    assert f"the limit of {LIMIT} bytes (SOLO_MAX_RESULT_BYTES)" in error["message"]

    # and its note was rolled back with it: only the first two are kept
    assert count(http, ref) == 2

    # Its call's record says the same
    status = http.get(f"/v1/calls/{error['call_id']}").json()
    assert status["status"] == "failed" and status["error"]["code"] == "result_too_large"


def test_results_up_to_the_limit_arrive_and_larger_ones_fail_and_change_nothing(cluster):
    cluster.start_worker(SOLO_MAX_RESULT_BYTES=str(LIMIT))
    cluster.start_api()
    with httpx.Client(base_url=cluster.url, timeout=60) as http:
        check_the_limit(http)


def test_under_solo_dev_large_results_arrive_instead_of_a_504(solo_dev):
    # `solo dev` without REDIS_URL: the embedded Redis carries each outcome to the API
    dev = solo_dev(PYTHONPATH=str(REPO), SOLO_OBJECTS="tests.objects", SOLO_MAX_RESULT_BYTES=str(LIMIT))
    with httpx.Client(base_url=dev.url, timeout=60) as http:
        check_the_limit(http)
