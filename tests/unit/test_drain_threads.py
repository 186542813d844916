"""The host's drain threads: every item handed over runs once, on at most `max_threads` threads."""

from __future__ import annotations

import threading

from solo.workers.drain_threads import DrainThreads


def test_every_item_runs_once_on_no_more_threads_than_allowed():
    done: list[int] = []
    lock = threading.Lock()
    all_done = threading.Event()

    def run(item: int) -> None:
        with lock:
            done.append(item)
            if len(done) == 200:
                all_done.set()

    threads = DrainThreads(run, max_threads=3, name_prefix="test-drain")
    for item in range(200):
        threads.submit(item)
    assert all_done.wait(30)
    assert sorted(done) == list(range(200))
    assert len(threads._threads) <= 3
    threads.shutdown(wait=True)
    assert not any(t.is_alive() for t in threads._threads)


def test_an_idle_thread_takes_the_next_item_instead_of_a_new_thread():
    ran = threading.Event()
    names: list[str] = []

    def run(item: int) -> None:
        names.append(threading.current_thread().name)
        ran.set()

    threads = DrainThreads(run, max_threads=8, name_prefix="test-drain")
    for item in range(5):
        ran.clear()
        threads.submit(item)
        assert ran.wait(30)
        while threads._idle == 0:  # the thread counts itself idle after its item
            threading.Event().wait(0.001)
    assert names == ["test-drain_0"] * 5
    threads.shutdown(wait=True)


def test_a_failing_item_leaves_its_thread_serving():
    second = threading.Event()

    def run(item: int) -> None:
        if item == 1:
            raise RuntimeError("boom")
        second.set()

    threads = DrainThreads(run, max_threads=1, name_prefix="test-drain")
    threads.submit(1)
    threads.submit(2)
    assert second.wait(30)
    threads.shutdown(wait=True)


def test_shutdown_drops_what_did_not_start_and_refuses_more():
    started, release = threading.Event(), threading.Event()
    ran: list[int] = []

    def run(item: int) -> None:
        ran.append(item)
        started.set()
        release.wait(30)

    threads = DrainThreads(run, max_threads=1, name_prefix="test-drain")
    threads.submit(1)
    assert started.wait(30)
    threads.submit(2)  # queued behind the running one
    threads.shutdown(wait=False)
    release.set()
    threads._threads[0].join(30)
    assert ran == [1]
    try:
        threads.submit(3)
    except RuntimeError:
        pass
    else:
        raise AssertionError("a stopped DrainThreads took an item")
