"""The API's group dispatch: what one send carries, and what its requests get when it fails."""

import asyncio
import threading

from solo.api.group_dispatch import GroupDispatch
from solo.workers.broker import MAX_IDS_PER_MESSAGE, DramatiqDispatcher


class Sends:
    """A dispatcher that records each send's object ids; `gate`, when given, holds every send until set."""

    def __init__(self, gate: threading.Event | None = None, fail: Exception | None = None) -> None:
        self.sent: list[tuple[str, ...]] = []
        self.started = threading.Event()
        self.gate = gate
        self.fail = fail

    def __call__(self, *object_ids: str) -> None:
        self.sent.append(object_ids)
        self.started.set()
        if self.gate is not None:
            assert self.gate.wait(10)
        if self.fail is not None:
            raise self.fail


def test_the_activations_asked_for_in_one_turn_go_out_in_one_send_each_id_once():
    sends = Sends()

    async def ask():
        dispatches = GroupDispatch(sends)
        await asyncio.gather(*(dispatches.dispatch(object_id) for object_id in ("a", "b", "a", "c")))
        return dispatches

    dispatches = asyncio.run(ask())
    assert sends.sent == [("a", "b", "c")]
    assert (dispatches.sends, dispatches.sent) == (1, 3)


def test_those_asked_for_while_a_send_is_out_go_together_in_the_next_one():
    gate = threading.Event()
    sends = Sends(gate)

    async def ask():
        dispatches = GroupDispatch(sends)
        first = asyncio.ensure_future(dispatches.dispatch("a"))
        await asyncio.to_thread(sends.started.wait, 10)  # "a" is being sent, and held there
        later = [asyncio.ensure_future(dispatches.dispatch(object_id)) for object_id in ("b", "c")]
        await asyncio.sleep(0.05)
        assert sends.sent == [("a",)]  # nothing else goes out while it is
        gate.set()
        await asyncio.gather(first, *later)

    asyncio.run(ask())
    assert sends.sent == [("a",), ("b", "c")]


def test_a_failed_send_fails_each_of_its_requests_and_the_next_send_goes_out():
    sends = Sends(fail=ConnectionError("redis is away"))

    async def ask():
        dispatches = GroupDispatch(sends)
        failed = await asyncio.gather(dispatches.dispatch("a"), dispatches.dispatch("b"), return_exceptions=True)
        sends.fail = None
        await dispatches.dispatch("c")
        return failed

    failed = asyncio.run(ask())
    assert [type(answer) for answer in failed] == [ConnectionError, ConnectionError]
    assert sends.sent == [("a", "b"), ("c",)]


class Broker:
    def __init__(self) -> None:
        self.messages = []

    def enqueue(self, message):
        self.messages.append(message)
        return message


def test_dramatiq_dispatch_puts_the_ids_in_as_few_messages_as_fit():
    broker = Broker()
    ids = [f"object-{i}" for i in range(MAX_IDS_PER_MESSAGE * 2 + 1)]
    DramatiqDispatcher(broker)(*ids)  # type: ignore[arg-type]
    assert [len(m.args) for m in broker.messages] == [MAX_IDS_PER_MESSAGE, MAX_IDS_PER_MESSAGE, 1]
    assert [i for m in broker.messages for i in m.args] == ids
    assert {(m.queue_name, m.actor_name) for m in broker.messages} == {("solo-activate", "activate")}
