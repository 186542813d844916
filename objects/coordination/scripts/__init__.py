"""Lua scripts, one per multi-key atomic operation; each file lists the keys it touches."""

from __future__ import annotations

from functools import cache
from importlib.resources import files


@cache
def source(name: str) -> str:
    return (files(__name__) / f"{name}.lua").read_text()
