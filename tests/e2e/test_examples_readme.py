"""Every command of examples/README.md, run in order against `solo dev` (what `make run` runs).

The README's ```sh blocks are read as a reader would type them: each command (a line, with
the lines a quote or a trailing backslash carries on) runs in bash, with the README's
127.0.0.1:8000 pointed at this test's server. The comment lines right under a command
are what it prints, one line each; "..." (or "…") in them stands for any text (ids, times).
A command that starts with `sleep` waits for something in the background (a retry, a flush):
it is run again until its output matches, within a bound. The interactive WebSocket clients
(`python -m websockets URL`) are opened by the test itself and stay connected, as the terminals
the README describes would.
"""

from __future__ import annotations

import contextlib
import re
import shlex
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import websockets.sync.client

README = Path(__file__).resolve().parents[2] / "examples" / "README.md"
README_ADDRESS = "127.0.0.1:8000"  # in http:// and ws:// URLs
WEBSOCKET_CLIENT = ".venv/bin/python -m websockets "
RETRY_BOUND_S = 60.0  # how long a `sleep` command may take to print what the README shows (a bound, not a timing)


@dataclass
class Command:
    text: str
    line: int
    expected: list[str] = field(default_factory=list)


def readme_commands(text: str) -> list[Command]:
    """The commands of the README's sh blocks, in order, each with the output lines shown under it."""
    commands: list[Command] = []
    in_block, pending, current = False, "", None
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            in_block, current = line.strip() == "```sh", None
            continue
        if not in_block:
            continue
        if pending:
            pending += "\n" + line
        elif line.startswith("# ") and current is not None:
            current.expected.append(line[2:])
            continue
        elif not line.strip() or line.startswith("#"):
            current = None
            continue
        else:
            pending, start = line, number
        if pending.count("'") % 2 or pending.endswith("\\"):
            continue  # the command goes on on the next line
        current = Command(pending, start)
        commands.append(current)
        pending = ""
    return commands


def matches(expected: str, actual: str) -> bool:
    pattern = ".*?".join(re.escape(part) for part in re.split(r"\.\.\.|…", expected))
    return re.fullmatch(pattern, actual) is not None


def test_every_command_of_the_examples_readme_prints_what_it_shows(solo_dev, tmp_path):
    # The reading itself: a command carried on by a quote or a backslash, its output, a note
    sample = readme_commands(
        '```sh\n# a note\ncurl -d \'{\n  "a": 1}\' x\n# {"result":...}\n\n# not output\ncurl y \\\n  z\n```\n'
        "# outside\n```python\ncurl no\n```\n"
    )
    assert [(c.text, c.expected) for c in sample] == [
        ("curl -d '{\n  \"a\": 1}' x", ['{"result":...}']),
        ("curl y \\\n  z", []),
    ]
    assert matches('{"a":...,"b":2}', '{"a":[1, 2],"b":2}') and not matches('{"a":1}', '{"a":12}')
    server = solo_dev()
    commands = readme_commands(README.read_text())
    assert len(commands) > 30  # the parse found the README's commands
    mismatches = []
    with contextlib.ExitStack() as sockets:
        for command in commands:
            text = command.text.replace(README_ADDRESS, server.url.removeprefix("http://"))
            if text.startswith(WEBSOCKET_CLIENT):
                url = shlex.split(text[len(WEBSOCKET_CLIENT) :])[0]
                sockets.enter_context(websockets.sync.client.connect(url))
                continue
            deadline = time.monotonic() + (RETRY_BOUND_S if text.startswith("sleep ") else 0)
            while True:
                run = subprocess.run(
                    ["bash", "-c", f"set -o pipefail; {text}"],
                    cwd=tmp_path,
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
                lines = run.stdout.strip().splitlines()
                ok = run.returncode == 0 and (
                    not command.expected
                    or (len(lines) == len(command.expected) and all(map(matches, command.expected, lines)))
                )
                if ok or time.monotonic() > deadline:
                    break
            if not ok:
                mismatches.append(
                    f"README line {command.line}: {command.text}\n  exit {run.returncode}, printed:\n    "
                    + "\n    ".join(lines + run.stderr.strip().splitlines())
                    + "\n  shown:\n    "
                    + "\n    ".join(command.expected)
                )
    assert not mismatches, "\n\n".join(mismatches)
