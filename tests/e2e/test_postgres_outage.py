"""The shared database restarted, then away for a few seconds, under load (bench/postgres_outage.py).

The harness and what it measures are in bench/postgres_outage.py; `make chaos` runs it
with a 30 s outage. Here: the chaos checker's verdicts on the history, that each fault
hit increments in flight and that every one of them was answered in the end, what the
API answered while the database was away, and that the workers neither restarted nor
spun. Times (the recovery) are printed, not asserted.
"""

from __future__ import annotations

from bench.postgres_outage import CALL_TIMEOUT_S, OutageConfig, describe, run


def test_a_postgres_restart_and_outage_lose_nothing_double_nothing_and_the_workers_wait_it_out(
    postgres_server, real_redis_url
):
    # An outage longer than the call timeout, so that a call is seen to wait for it and no longer
    config = OutageConfig(
        outage_s=CALL_TIMEOUT_S + 2, warm_s=1.5, restart_gap_s=2.5, after_s=3, objects=6, clients=6, replays=30
    )

    result = run(config, redis=real_redis_url)

    print("\n".join(describe(result)))
    failed = {v.name: v.problems[:5] for v in result.verdicts if not v.ok}
    assert not failed, failed
    assert result.acknowledged > 0
    # Each fault hit increments in flight (sent before the stop, unacknowledged then), and each was answered
    for fault in result.faults:
        assert fault.in_flight, fault.kind
        assert all(op.value is not None for op in fault.in_flight), fault.kind
    # While the database was away: a call waited for its timeout (504 with its id, and it still runs),
    # a route that reads the database itself failed at once, and readiness said so; never a 500
    outage = result.fault("outage")
    assert ("call", 504, "timeout") in outage.probes, outage.probes
    assert ("object info", 503, "unavailable") in outage.probes, outage.probes
    assert ("readyz", 503, "unavailable") in outage.probes, outage.probes
    # (and a call sent again under its key while it waited is not taken for a crash: never 422 poisoned)
    assert not [k for k in result.errors if k.startswith("HTTP") and k not in ("HTTP 503", "HTTP 504")], result.errors
    # The workers waited it out: the same processes, alive, none spinning (a bound far above the
    # few connection attempts a second they make, far below a busy loop's whole core)
    assert result.alive_after and result.pids_before == result.pids_after
    assert outage.cpu_s and all(cpu < 0.5 * config.outage_s for cpu in outage.cpu_s.values()), outage.cpu_s
    # and served again after it without anyone's help
    assert result.recovery_s(outage) is not None
