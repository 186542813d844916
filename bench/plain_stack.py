"""Run a solo command as it runs without uvloop, httptools and hiredis, for A/B benchmarks.

    python -m bench.plain_stack python -m solo api ...     (the arguments after the module: a solo command line)

Makes those three modules unimportable before anything imports them, so uvicorn's
loop="auto" and http="auto" fall back to asyncio and h11, and redis-py to its own
Python reply parser: the stack solo had before it depended on them.
"""

from __future__ import annotations

import runpy
import sys

ACCELERATORS = ("uvloop", "httptools", "hiredis")


def main() -> None:
    for name in ACCELERATORS:
        sys.modules[name] = None  # type: ignore[assignment]  # `import name` raises ImportError
    command = sys.argv[1:]
    module = command.index("-m") + 1  # the command is `python -m solo ...` (solo.testing.cluster.SOLO)
    sys.argv = [command[module], *command[module + 1 :]]
    runpy.run_module(command[module], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
