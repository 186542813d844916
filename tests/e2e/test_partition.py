"""Partitions in CI: workers on three "hosts" (network namespaces); one is cut off from Redis, then
another from PostgreSQL, then a third from both, while calls to its objects are in flight.

The harness and the reasoning behind each check are in bench/partition.py; this test asserts
its verdicts only (no timing; the takeover times go to bench/RESULTS.md). `make chaos` runs
three rounds of it.
"""

from __future__ import annotations

import pytest

from bench.netns import unsupported
from bench.partition import KINDS, PartitionConfig, describe, run


@pytest.fixture(scope="module")
def namespaces() -> None:
    reason = unsupported()
    if reason is not None:
        pytest.skip(f"partition test needs network namespaces: {reason}")


def test_a_cut_off_owner_never_commits_after_its_fence_and_the_other_hosts_take_over(namespaces, redis_server):
    # (redis_server: the run starts a Redis of its own, bench/private_redis.py, which finds the same program)
    result = run(PartitionConfig(rounds=1))

    print("\n".join(describe(result)))
    failed = {v.name: v.problems[:5] for v in result.verdicts if not v.ok}
    assert not failed, failed
    assert [cut.kind for cut in result.cuts] == list(KINDS)
    # Each cut hit work in flight: calls to the cut host's objects sent before the cut and not answered
    # at it, among them a slow one running on the host. Cut off from Redis, the host still reaches
    # Postgres: its slow call runs on past its object's takeover, and its shipment meets the epoch fence.
    for cut in result.cuts:
        assert cut.in_flight and cut.slow, cut.kind
    redis_cut = result.cuts[0]
    assert redis_cut.fenced_after > redis_cut.fenced_before, (redis_cut.takeover_s, redis_cut.slow)
    assert result.leftovers == []
