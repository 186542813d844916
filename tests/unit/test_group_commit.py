"""GroupCommit: what threads have ready at the same moment goes in one round trip, each with its own answer."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from solo.objects.group_commit import GroupCommit


def test_a_lone_item_goes_at_once_in_a_round_trip_of_its_own():
    groups: list[list[int]] = []

    def run_many(items: Sequence[int]) -> list[int]:
        groups.append(list(items))
        return [i * 2 for i in items]

    commit = GroupCommit(run_many)
    assert commit.run(3) == 6
    assert commit.run(4) == 8
    assert groups == [[3], [4]]


def test_items_that_arrive_during_a_round_trip_go_together_in_the_next_one():
    # Given a round trip under way that holds until two more items wait
    release = threading.Event()
    groups: list[list[int]] = []

    def run_many(items: Sequence[int]) -> list[int]:
        groups.append(list(items))
        if items == [0]:
            release.wait(5)
        return [i * 10 for i in items]

    commit: GroupCommit[int, int] = GroupCommit(run_many)
    answers: dict[int, int] = {}

    def run(i: int) -> None:
        answers[i] = commit.run(i)

    first = threading.Thread(target=run, args=(0,))
    first.start()
    while not groups:
        time.sleep(0.001)
    # When two more threads arrive meanwhile
    others = [threading.Thread(target=run, args=(i,)) for i in (1, 2)]
    for t in others:
        t.start()
    while commit.waiting < 2:
        time.sleep(0.001)
    release.set()
    for t in [first, *others]:
        t.join(5)
    # Then they share the second round trip, and each gets its own answer
    assert groups[0] == [0] and sorted(groups[1]) == [1, 2] and len(groups) == 2
    assert answers == {0: 0, 1: 10, 2: 20}
    assert (commit.groups, commit.items) == (2, 3)


def test_up_to_round_trips_groups_run_side_by_side_and_the_rest_wait_for_the_first_to_end():
    # Given two round trips allowed at once, both under way and holding
    release = threading.Event()
    groups: list[list[int]] = []

    def run_many(items: Sequence[int]) -> list[int]:
        groups.append(list(items))
        if items in ([0], [1]):
            release.wait(5)
        return [i + 100 for i in items]

    commit: GroupCommit[int, int] = GroupCommit(run_many, round_trips=2)
    answers: dict[int, int] = {}

    def run(i: int) -> None:
        answers[i] = commit.run(i)

    leaders = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
    for t in leaders:
        t.start()
    while len(groups) < 2:
        time.sleep(0.001)
    # When three more arrive meanwhile
    others = [threading.Thread(target=run, args=(i,)) for i in (2, 3, 4)]
    for t in others:
        t.start()
    while commit.waiting < 3:
        time.sleep(0.001)
    release.set()
    for t in [*leaders, *others]:
        t.join(5)
    # Then the first two went alone, side by side; the three waiting went in the next round trips;
    # every thread got its own answer, exactly once
    assert sorted(map(tuple, groups[:2])) == [(0,), (1,)]
    assert sorted(i for g in groups[2:] for i in g) == [2, 3, 4]
    assert answers == {i: i + 100 for i in range(5)}
    assert commit.items == 5 and commit.waiting == 0


def test_an_exception_answered_for_one_item_is_raised_in_its_thread_only():
    def run_many(items: Sequence[int]) -> list[int | BaseException]:
        return [ValueError(f"no {i}") if i < 0 else i for i in items]

    commit: GroupCommit[int, int] = GroupCommit(run_many)
    with pytest.raises(ValueError, match="no -1"):
        commit.run(-1)
    assert commit.run(1) == 1


def test_a_failed_round_trip_fails_every_item_of_its_group_and_the_next_one_runs():
    fail = True

    def run_many(items: Sequence[int]) -> list[int]:
        if fail:
            raise ConnectionError("down")
        return list(items)

    commit: GroupCommit[int, int] = GroupCommit(run_many)
    with pytest.raises(ConnectionError):
        commit.run(1)
    fail = False
    assert commit.run(2) == 2


def test_many_threads_each_get_their_own_answer():
    commit: GroupCommit[int, int] = GroupCommit(lambda items: [i + 1 for i in items])
    answers: dict[int, int] = {}

    def run(i: int) -> None:
        for k in range(50):
            answers[i * 1000 + k] = commit.run(i * 1000 + k)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert answers == {key: key + 1 for key in answers} and len(answers) == 400
    assert commit.items == 400
