"""SOLO_RETENTION_S and SOLO_COMPACT_INTERVAL_S: read from the environment, checked at start-up."""

import pytest

from solo.objects.errors import InvalidSettings
from solo.objects.settings import Settings


def test_the_window_defaults_to_seven_days_and_the_compactor_to_hourly():
    settings = Settings.from_env({})
    assert settings.retention_s == 7 * 24 * 3600
    assert settings.compact_interval_s == 3600


def test_the_window_and_the_interval_come_from_the_environment():
    settings = Settings.from_env({"SOLO_RETENTION_S": "86400", "SOLO_COMPACT_INTERVAL_S": "0"})
    assert (settings.retention_s, settings.compact_interval_s) == (86400, 0)


@pytest.mark.parametrize(
    "variable, value",
    [("SOLO_RETENTION_S", "59"), ("SOLO_RETENTION_S", "-1"), ("SOLO_COMPACT_INTERVAL_S", "-5")],
)
def test_a_window_under_a_minute_or_a_negative_interval_is_refused(variable, value):
    with pytest.raises(InvalidSettings, match=variable):
        Settings.from_env({variable: value})
