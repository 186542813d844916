"""The chaos checker (bench/chaos_check.py) rejects each history it must reject, and passes a sound one.

Small hand-made histories, no services; the chaos run itself is tests/e2e/test_chaos.py.
"""

from __future__ import annotations

import datetime as dt

from bench.chaos_check import Commit, LedgerRow, Op, check_commits, check_duplicates, check_lost, check_real_time_order


def op(value: int | None, sent: float, acked: float | None, name: str = "a", key: str = "") -> Op:
    return Op(name, key or f"k{value}-{sent}", sent=sent, acked=acked, value=value, attempts=1)


def test_a_sound_counter_history_passes_every_check():
    ops = [op(1, 0.0, 1.0), op(2, 0.5, 1.5), op(3, 2.0, 3.0)]
    assert check_lost(ops, {"a": 3}).ok
    assert check_duplicates(ops, {"a": 3}, [(ops[0], 1)], {"a": 3}).ok
    assert check_real_time_order(ops).ok


def test_a_lost_increment_is_caught():
    twice_the_same_value = [op(1, 0.0, 1.0), op(1, 2.0, 3.0)]
    assert not check_lost(twice_the_same_value, {"a": 1}).ok
    count_went_back = [op(1, 0.0, 1.0), op(2, 2.0, 3.0)]
    assert not check_lost(count_went_back, {"a": 1}).ok


def test_an_increment_applied_twice_is_caught():
    ops = [op(1, 0.0, 1.0), op(3, 2.0, 3.0)]
    assert not check_duplicates(ops, {"a": 3}, [], {"a": 3}).ok  # two increments sent, count is 3
    assert not check_duplicates(ops, {"a": 2}, [(ops[0], 4)], {"a": 2}).ok  # a re-sent key ran again
    assert not check_duplicates(ops, {"a": 2}, [], {"a": 3}).ok  # re-sending moved the count


def test_real_time_order_is_checked_not_acknowledgement_order():
    concurrent_acked_out_of_order = [op(2, 0.0, 1.0), op(1, 0.5, 1.5)]
    assert check_real_time_order(concurrent_acked_out_of_order).ok
    later_call_got_the_smaller_value = [op(2, 0.0, 1.0), op(1, 2.0, 3.0)]
    assert not check_real_time_order(later_call_got_the_smaller_value).ok


T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def at(ms: int) -> dt.datetime:
    return T0 + dt.timedelta(milliseconds=ms)


def ledger(*epochs: tuple[int, int, int | None]) -> list[LedgerRow]:
    return [LedgerRow("o", e, f"w{e}", at(start), None if stop is None else at(stop)) for e, start, stop in epochs]


def test_commits_of_fenced_epochs_may_follow_a_late_ledger_stop_but_never_overlap():
    commits = [Commit("o", 1, 1, at(10), "log"), Commit("o", 2, 1, at(20), "log"), Commit("o", 3, 2, at(40), "log")]
    paused_owner_stopped_late = ledger((1, 0, 90), (2, 30, None))
    verdict, counts = check_commits(commits, paused_owner_stopped_late, {"o": 3})
    assert verdict.ok, verdict.problems
    assert counts["ledger_overlaps"] == 1


def test_a_former_owner_committing_after_its_successor_is_caught():
    commits = [Commit("o", 1, 1, at(10), "log"), Commit("o", 2, 2, at(40), "log"), Commit("o", 3, 1, at(50), "log")]
    verdict, _ = check_commits(commits, ledger((1, 0, None), (2, 30, None)), {"o": 3})
    assert not verdict.ok


def test_overlapping_commit_intervals_and_gaps_are_caught():
    interleaved_in_time = [Commit("o", 1, 1, at(50), "log"), Commit("o", 2, 2, at(40), "log")]
    verdict, _ = check_commits(interleaved_in_time, ledger((1, 0, None), (2, 30, None)), {"o": 2})
    assert not verdict.ok
    gap = [Commit("o", 1, 1, at(10), "log"), Commit("o", 3, 1, at(20), "log")]
    verdict, _ = check_commits(gap, ledger((1, 0, None)), {"o": 3})
    assert not verdict.ok
    without_activation = [Commit("o", 1, 1, at(10), "log")]
    verdict, _ = check_commits(without_activation, [], {"o": 1})
    assert not verdict.ok
