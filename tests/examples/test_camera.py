"""CameraPoller: hourly polls of a simulated feed, deduplicated ingest, the last poll's outcome.

Its behaviour on solo.testing.LocalSystem, where the hours pass on a clock moved by hand;
concurrent ingests and a worker's kill -9 on real processes.
"""

import base64
import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import pytest

from solo import CallError
from solo.testing import LocalSystem

HOUR_MS = 3_600_000
PICTURE = base64.b64encode(b"\xff\xd8 a deer at the salt lick \xff\xd9").decode()
FIVE_O_CLOCK = int(dt.datetime(2025, 10, 1, 5, tzinfo=dt.UTC).timestamp() * 1000)


def test_configure_declares_an_hourly_poll_and_a_poll_stores_the_last_hour(local):
    camera = local.object("CameraPoller", "ridge")
    status = camera.configure(feed="simulated", settings={"interval_s": 900})
    assert status["next_poll_ms"] % HOUR_MS == 0  # cron "0 * * * *": on the hour

    first = camera.poll_now()

    # The simulated camera takes a picture every 15 minutes: four in the last hour.
    assert first == {"ok": True, "error": None, "stored": 4, "duplicates": 0}
    status = camera.status()
    assert status["images"] == 4 and status["last_error"] is None
    assert status["last_poll_ok_ms"] == status["last_poll_attempt_ms"] == local.clock()
    assert [image["source"] for image in camera.images(limit=10)] == ["feed"] * 4


def test_the_hourly_poll_fetches_what_the_hour_brought_and_outlives_a_restart():
    with LocalSystem(objects="solo.examples", now_ms=FIVE_O_CLOCK) as local:
        camera = local.object("CameraPoller", "meadow")
        camera.configure()
        assert camera.poll_now()["stored"] == 4  # 04:15, 04:30, 04:45, 05:00

        local.restart()
        local.clock.advance(ms=HOUR_MS)  # six o'clock: the schedule polls on its own

        status = camera.status()
        assert status["images"] == 8 and status["last_poll_ok_ms"] == FIVE_O_CLOCK + HOUR_MS
        assert status["next_poll_ms"] == FIVE_O_CLOCK + 2 * HOUR_MS


def test_the_same_content_under_another_id_is_a_duplicate(local):
    camera = local.object("CameraPoller", "creek")
    camera.configure()
    camera.ingest(image_id="a", taken_at=1_700_000_000_000, bytes_b64=PICTURE)

    again = camera.ingest(image_id="b", taken_at=1_700_000_000_000, bytes_b64=PICTURE)

    assert again["status"] == "duplicate" and again["image_id"] == "a"


def test_a_retried_request_gets_its_first_answer_back(local):
    camera = local.object("CameraPoller", "retry")
    camera.configure()
    args = {"image_id": "img-9", "taken_at": "2025-10-01T06:00:00", "url": "https://cams.example/img-9.jpg"}

    first = camera.call("ingest", idempotency_key="upload-9", **args)
    retry = camera.call("ingest", idempotency_key="upload-9", **args)
    fresh = camera.ingest(**args)

    assert first["status"] == retry["status"] == "stored"  # the retry did not run again
    assert fresh["status"] == "duplicate"


def test_polling_before_configure_is_refused(local):
    with pytest.raises(CallError) as failed:
        local.object("CameraPoller", "new").poll_now()
    assert (failed.value.status, failed.value.code) == (409, "not_configured")


@pytest.mark.parametrize(
    ("method", "args", "code"),
    [
        ("ingest", {"image_id": "x", "taken_at": 1, "bytes_b64": PICTURE, "url": "https://a/b"}, "invalid_image"),
        ("ingest", {"image_id": "x", "taken_at": 1}, "invalid_image"),
        ("ingest", {"image_id": "x", "taken_at": 1, "bytes_b64": "not base64!"}, "invalid_image"),
        ("ingest", {"image_id": "x", "taken_at": "yesterday", "bytes_b64": PICTURE}, "invalid_image"),
        ("ingest", {"image_id": "x", "taken_at": 1, "url": "ftp://a/b"}, "invalid_image"),
        ("ingest", {"image_id": "", "taken_at": 1, "bytes_b64": PICTURE}, "invalid_image"),
        ("configure", {"feed": "webcam"}, "invalid_feed"),
        ("configure", {"settings": {"interval_s": 5}}, "invalid_feed"),
        ("configure", {"settings": {"zoom": 2}}, "invalid_feed"),
        ("images", {"limit": 0}, "invalid_limit"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(local, method, args, code):
    camera = local.object("CameraPoller", "bad")
    camera.configure()
    before = camera.status()

    with pytest.raises(CallError) as failed:
        camera.call(method, **args)

    assert (failed.value.status, failed.value.code) == (400, code)
    assert camera.status() == before


# -- on real processes ----------------------------------------------------------------


def test_twenty_concurrent_ingests_of_one_picture_store_it_once(api, run_id):
    camera = f"CameraPoller/gate-{run_id}"
    api.call(camera, "configure")

    def ingest(_: int) -> str:
        args = {"image_id": "img-1", "taken_at": "2025-10-01T05:30:00Z", "bytes_b64": PICTURE}
        return api.call(camera, "ingest", **args)["status"]

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(ingest, range(20)))

    assert sorted(answers) == ["duplicate"] * 19 + ["stored"]
    assert api.call(camera, "status")["images"] == 1


def test_a_failed_poll_is_recorded_and_polling_survives_a_worker_restart(solo, api, run_id):
    camera = f"CameraPoller/offline-{run_id}"
    api.call(camera, "configure")
    assert api.call(camera, "poll_now")["ok"]
    good = api.call(camera, "status")

    api.call(camera, "configure", settings={"offline": True})
    failed = api.call(camera, "poll_now")
    solo.restart_workers()
    status = api.call(camera, "status")

    assert failed["ok"] is False and "does not answer" in failed["error"]
    assert status["last_error"] == failed["error"]
    assert status["last_poll_ok_ms"] == good["last_poll_ok_ms"]
    assert status["last_poll_attempt_ms"] > good["last_poll_ok_ms"]
    assert status["images"] == good["images"] == 4
    assert status["next_poll_ms"] % HOUR_MS == 0

    # Back online, the next poll clears the error and fetches only what is new.
    api.call(camera, "configure", settings={"offline": False})
    assert api.call(camera, "poll_now")["ok"]
    assert api.call(camera, "status")["last_error"] is None
