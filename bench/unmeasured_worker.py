"""`solo worker` with its per-call metrics and log fields turned off: the baseline of bench/observability.py.

    .venv/bin/python -m bench.unmeasured_worker      (the environment of `solo worker`)

solo has no switch for its metrics (they are always recorded); this replaces what a warm
call pays for them, and for the log fields bound around each batch and call, with nothing.
"""

from __future__ import annotations

import contextlib
import sys

from solo.objects import metrics
from solo.objects.runtime import log_fields


def unmeasured() -> None:
    metrics.RuntimeMetrics.batch_done = lambda self, *args, **kwargs: None  # type: ignore[method-assign]
    metrics.RuntimeMetrics.shipped = lambda self, *args, **kwargs: None  # type: ignore[method-assign]
    log_fields.bound = lambda **fields: contextlib.nullcontext()  # type: ignore[assignment]


def main() -> int:
    unmeasured()
    from solo.cli.main import main as solo

    return solo(["worker"])


if __name__ == "__main__":
    sys.exit(main())
