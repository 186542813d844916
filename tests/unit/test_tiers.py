"""The tier rule of tests/conftest.py, seen from outside: what `pytest -m unit` (make test-fast) selects.

One `pytest --collect-only` in a subprocess, the way `make test-fast` selects: it must
collect unit tests only, and none that needs the real services or starts processes.
"""

from __future__ import annotations

import re
import subprocess
import sys

from tests import REPO

REAL_VARIANT = re.compile(r"\[(.*-)?real(-.*)?\]$")  # the `backend` parameter is "real"


def collected(*args: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return [line for line in done.stdout.splitlines() if "::" in line]


def test_the_unit_tier_holds_no_test_that_needs_a_service_or_starts_a_process():
    unit = collected("-m", "unit")

    assert any(test.startswith("tests/unit/") for test in unit)
    assert any(test.startswith("tests/contract/") and test.endswith("[fake]") for test in unit)
    outside = [test for test in unit if not test.startswith(("tests/unit/", "tests/contract/", "tests/examples/"))]
    assert outside == []  # tests/integration and tests/e2e need services
    assert any(test.startswith("tests/examples/") for test in unit)  # the examples' objects on LocalSystem
    assert [test for test in unit if REAL_VARIANT.search(test)] == []
    contract = [test for test in unit if test.startswith("tests/contract/")]
    assert all("fake" in test.rsplit("[", 1)[1] for test in contract)
