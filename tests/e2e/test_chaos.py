"""Chaos in CI: a minute of load while workers are killed and paused and Redis restarts.

The harness and the reasoning behind each check are in bench/chaos.py; the
end-to-end test asserts the checker's verdicts only (no timing), and that the
faults were really injected, each while increments were in flight. `make chaos`
runs the same for ten minutes. tests/unit/test_chaos_check.py shows that each
check fails on the history it must reject.
"""

from __future__ import annotations

from bench.chaos import ChaosConfig, describe, run


def test_chaos_loses_nothing_applies_nothing_twice_and_no_commits_overlap(postgres_url, redis_server):
    # (redis_server: the run restarts a Redis of its own, bench/private_redis.py, which finds the same program)
    config = ChaosConfig(seconds=60, workers=3, objects=30, clients=12, kill_every_s=5, pause_every_s=15, replays=200)

    result = run(config, database_url=postgres_url)

    print("\n".join(describe(result)))
    failed = {v.name: v.problems[:5] for v in result.verdicts if not v.ok}
    assert not failed, failed
    assert result.acknowledged > 0
    assert result.faults["kill -9"] >= 3
    assert result.faults["SIGSTOP"] >= 1
    assert result.faults["redis restart"] == 1
    # and each fault hit increments in flight: sent before it (a fault's time is noted once it is done)
    # and not acknowledged by then
    for kind in ("kill -9", "SIGSTOP", "redis restart"):
        for at in result.fault_times[kind]:
            assert any(op.sent < at and (op.acked is None or op.acked > at) for op in result.ops), (kind, at)
