"""Lua scripts, one per multi-key atomic operation; each file lists the keys it touches.

A line ``--#include NAME`` is replaced by the script ``NAME.lua`` (a shared function, kept once).
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

INCLUDE = "--#include "


@cache
def source(name: str) -> str:
    lines = (files(__name__) / f"{name}.lua").read_text().splitlines(keepends=True)
    return "".join(source(line[len(INCLUDE) :].strip()) if line.startswith(INCLUDE) else line for line in lines)
