"""solo's test suite: unit (no services), integration (real Redis and Postgres), e2e (real processes)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
