"""Activation messages through Dramatiq on Redis: one message names several objects, and its worker takes them all."""

import threading

import dramatiq

from solo.workers.broker import DramatiqDispatcher, declare_actors, make_broker


def test_one_activation_message_takes_every_object_it_names(settings, redis_client):
    broker = make_broker(settings, redis_client)
    taken: list[tuple[str, ...]] = []
    done = threading.Event()

    def activate(*object_ids: str) -> None:  # ObjectHost.activate's signature
        taken.append(object_ids)
        done.set()

    declare_actors(broker, activate)
    DramatiqDispatcher(broker)("first", "second", "third")
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        assert done.wait(30)
    finally:
        worker.stop()
        broker.close()
    assert taken == [("first", "second", "third")]
