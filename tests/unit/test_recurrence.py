"""When schedules fall: intervals, cron (via croniter), one-shots, and bad specifications."""

import datetime as dt

import pytest

from solo.objects.recurrence import InvalidSchedule, Recurrence, to_epoch_ms

NOON = 12 * 3600 * 1000
DAY = 24 * 3600 * 1000


def test_an_interval_starts_one_period_from_now_unless_given_a_start():
    r = Recurrence.build(now_ms=1000, at_ms=None, every_s=10, cron=None)
    assert r.first() == 11_000
    assert r.after(11_000) == 21_000 and r.after(10_999) == 11_000
    assert r.latest(35_000, since_ms=11_000) == 31_000
    assert Recurrence.build(now_ms=1000, at_ms=500, every_s=10, cron=None).first() == 500


def test_a_fire_now_off_the_grid_counts_as_the_latest_occurrence_and_the_next_follows_it():
    """An operator's fire-now sets the occurrence to now, between two of the grid's."""
    interval = Recurrence.build(now_ms=1000, at_ms=None, every_s=10, cron=None)
    assert interval.latest(25_000, since_ms=24_000) == 24_000 and interval.after(24_000) == 31_000
    daily = Recurrence.build(now_ms=0, at_ms=None, every_s=None, cron="0 12 * * *")
    assert daily.latest(NOON + 5000, since_ms=NOON + 1000) == NOON + 1000 and daily.after(NOON + 1000) == DAY + NOON


def test_cron_is_utc_and_second_resolution_is_the_sixth_field():
    daily = Recurrence.build(now_ms=0, at_ms=None, every_s=None, cron="0 12 * * *")
    assert daily.first() == NOON
    assert daily.after(NOON) == DAY + NOON
    assert daily.latest(3 * DAY, since_ms=NOON) == 2 * DAY + NOON
    every_5s = Recurrence.build(now_ms=0, at_ms=None, every_s=None, cron="* * * * * */5")
    assert [every_5s.first(), every_5s.after(5000), every_5s.latest(12_000, since_ms=5000)] == [5000, 10_000, 10_000]


def test_a_one_shot_has_no_occurrence_after_its_time():
    once = Recurrence.build(now_ms=0, at_ms=5000, every_s=None, cron=None)
    assert not once.recurring
    assert once.first() == 5000 and once.after(4999) == 5000 and once.after(5000) is None


@pytest.mark.parametrize(
    "spec, message",
    [
        ({}, "give at, every_s or cron"),
        ({"every_s": 1, "cron": "* * * * *"}, "not both"),
        ({"cron": "61 * * * *"}, "not a valid cron"),
        ({"cron": "* * * * *", "at_ms": 5}, "takes no 'at'"),
        ({"every_s": 0}, "at least 0.001"),
        ({"every_s": True}, "at least 0.001"),
        ({"every_s": float("nan")}, "at least 0.001"),
    ],
)
def test_bad_specifications_are_refused(spec, message):
    with pytest.raises(InvalidSchedule, match=message):
        Recurrence.build(0, spec.get("at_ms"), spec.get("every_s"), spec.get("cron"))


def test_times_are_datetimes_or_epoch_milliseconds():
    assert to_epoch_ms(dt.datetime(1970, 1, 1, 0, 0, 1)) == 1000  # naive means UTC
    assert to_epoch_ms(dt.datetime(1970, 1, 1, 1, 0, 1, tzinfo=dt.timezone(dt.timedelta(hours=1)))) == 1000
    assert to_epoch_ms(1234.9) == 1234
    for bad in (-1, float("inf"), True, "soon", None):
        with pytest.raises(InvalidSchedule):
            to_epoch_ms(bad)
