"""The WebSocket gateway's heartbeat thread (api/gateway_heartbeat.py).

The thread is what keeps a busy API process's gateway alive: its event loop, held up by a burst
of sockets, once let a live gateway go 5 s without a beat, and the reaper closed its sockets.
"""

from __future__ import annotations

import asyncio
import threading
import time

from solo.api.gateway_heartbeat import GatewayHeartbeat


class Beats:
    """A beat that counts, and can be told what to answer."""

    def __init__(self, answer: tuple[bool, int] = (False, 0)) -> None:
        self.count = 0
        self.answer = answer
        self.happened = threading.Event()

    def __call__(self) -> tuple[bool, int]:
        self.count += 1
        self.happened.set()
        return self.answer


def test_the_thread_beats_while_the_event_loop_is_held_up():
    beats = Beats()

    async def scenario() -> bool:
        heartbeat = GatewayHeartbeat(beats, active=lambda: True, held=lambda: 0, on_lost=print, interval_s=0.01)
        heartbeat.start()
        beats.happened.clear()
        # The loop does not turn (a burst of work, or a long collection) until a beat has gone out.
        beaten = beats.happened.wait(60)
        await heartbeat.stop()
        return beaten

    assert asyncio.run(scenario())


def test_a_loop_that_stood_still_past_the_bound_gets_no_beat():
    beats = Beats()
    heartbeat = GatewayHeartbeat(beats, active=lambda: True, held=lambda: 0, on_lost=lambda _: None)
    heartbeat._loop_turned = time.monotonic() - heartbeat.loop_stall_s - 1  # noqa: SLF001 - a loop stuck that long
    assert not heartbeat.step()
    assert beats.count == 0
    heartbeat._loop_turned = time.monotonic()  # noqa: SLF001 - it turns again
    assert heartbeat.step()
    assert beats.count == 1


def test_no_beat_before_the_process_holds_a_socket():
    beats = Beats()
    heartbeat = GatewayHeartbeat(beats, active=lambda: False, held=lambda: 0, on_lost=lambda _: None)
    assert not heartbeat.step()
    assert beats.count == 0


def test_a_gateway_missing_or_short_of_sockets_in_redis_is_handed_to_the_loop():
    async def scenario() -> list[bool]:
        lost: list[bool] = []
        answers = iter([(False, 3), (False, 2), (True, 0)])
        heartbeat = GatewayHeartbeat(lambda: next(answers), active=lambda: True, held=lambda: 3, on_lost=lost.append)
        heartbeat.start()
        await heartbeat.stop()  # its thread takes no step of its own from here on
        for _ in range(3):
            assert heartbeat.step()
        await asyncio.sleep(0)  # the calls it handed over run on the loop
        return lost

    assert asyncio.run(scenario()) == [False, True]  # short of one socket; then missing (a restart)
