"""Calls between objects that live in different worker processes."""

from __future__ import annotations

import os
import signal
import uuid

import httpx


def _owner(http: httpx.Client, address: str) -> str | None:
    return http.get(f"/v1/objects/{address}").json().get("owner")


def test_a_cycle_across_two_workers_fails_fast_with_the_cycle_named(cluster):
    # Given object B served by worker 0 (leases long enough to survive a short pause)
    first = cluster.start_worker(SOLO_LEASE_TTL_MS="10000")
    cluster.start_api()
    run = uuid.uuid4().hex[:8]
    a, b = f"Relay/a-{run}", f"Relay/b-{run}"
    with httpx.Client(base_url=cluster.url, timeout=60) as http:
        assert http.post(f"/v1/objects/{b}/log").status_code == 200
        # and object A served by worker 1: worker 0 is paused while A is activated
        cluster.start_worker()
        os.kill(first.pid, signal.SIGSTOP)
        try:
            assert http.post(f"/v1/objects/{a}/log").status_code == 200
        finally:
            os.kill(first.pid, signal.SIGCONT)
        owner_a, owner_b = _owner(http, a), _owner(http, b)
        assert owner_a and owner_a.startswith("w1-"), owner_a
        assert owner_b and owner_b.startswith("w0-"), owner_b

        # A call from A to B across the workers works
        assert http.post(f"/v1/objects/{a}/hop", json={"route": [b]}).json()["result"] == [a, b]

        # When A calls B, which calls A back while A waits
        response = http.post(f"/v1/objects/{a}/hop", json={"route": [b, a]})

        # Then it fails as a cycle, named (not as a timeout: nothing waited it out)
        assert response.status_code >= 400
        error = response.json()["error"]
        assert error["code"] == "call_cycle", error
        assert f"{a} -> {b} -> {a}" in error["message"]

        # and both objects keep serving, where they were
        assert http.post(f"/v1/objects/{b}/hop", json={"route": [a]}).json()["result"] == [b, a]
        assert _owner(http, a) == owner_a and _owner(http, b) == owner_b
