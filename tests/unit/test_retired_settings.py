"""A variable an earlier version read is named in a warning, not silently ignored."""

import logging

from solo.objects.settings import Settings


def test_a_retired_variable_is_named_in_a_warning_and_changes_nothing(caplog):
    with caplog.at_level(logging.WARNING, logger="solo.objects.settings"):
        settings = Settings.from_env({"SOLO_SCHEDULER_POLL_MS": "10"})
    assert settings.scheduler_max_sleep_ms == Settings().scheduler_max_sleep_ms
    assert "SOLO_SCHEDULER_POLL_MS is no longer read" in caplog.text
    assert "SOLO_SCHEDULER_MAX_SLEEP_MS" in caplog.text
