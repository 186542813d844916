"""The progress bar of `solo objects export` and `import` (cli/main.py), drawn on a string."""

from __future__ import annotations

import io

from solo.cli.main import ProgressBar


def test_the_progress_bar_redraws_one_line():
    stream = io.StringIO()
    bar = ProgressBar("export Counter/a", stream=stream, enabled=True, width=10, min_interval_s=0)
    for done in (0, 512 * 1024, 3 * 1024 * 1024):
        bar(done, 3 * 1024 * 1024)
    bar.finish()
    lines = stream.getvalue().split("\r")[1:]
    assert lines[0].startswith("export Counter/a [----------] 0 B / 3.0 MiB   0%")
    assert lines[1].startswith("export Counter/a [#---------] 512.0 KiB / 3.0 MiB  17%")
    assert "[##########] 3.0 MiB / 3.0 MiB 100%" in lines[-1] and stream.getvalue().endswith("\n")
    silent = io.StringIO()
    quiet = ProgressBar("x", stream=silent, enabled=False)
    quiet(1, 2)
    quiet.finish()
    assert silent.getvalue() == ""
