"""Benchmarks and the chaos harness (not installed: run from the repository's root)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
