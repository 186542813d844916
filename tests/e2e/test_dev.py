"""`solo dev` as a new user runs it: their own module from the current directory, a banner with a call
that works, one `solo dev` per ./var and port, and `--reload` on save.

Each test starts a real `solo dev` (embedded Redis, SQLite in ./var, API and worker processes).
"""

from __future__ import annotations

import json
import subprocess
import sys

import httpx

from tests.e2e.conftest import dev_env, wait_until

TODO = """\
from solo import DurableObject, rpc


class Todo(DurableObject):
    migrations = ["CREATE TABLE items (id INTEGER PRIMARY KEY, title TEXT NOT NULL)"]

    @rpc
    def add(self, title: str) -> int:
        return self.sql.execute("INSERT INTO items (title) VALUES (?)", (title,)).lastrowid

    @rpc
    def titles(self) -> list[str]:
        return [row["title"] for row in self.sql.execute("SELECT title FROM items ORDER BY id")]
"""


def call(url: str, ref: str, method: str, **kwargs) -> httpx.Response:
    return httpx.post(f"{url}/v1/objects/{ref}/{method}", json=kwargs, timeout=60)


def test_solo_dev_serves_a_module_from_its_directory_with_a_banner_call_that_works(solo_dev, tmp_path):
    # Given a folder holding todo.py, and no PYTHONPATH
    dev = solo_dev(files={"todo.py": TODO}, SOLO_OBJECTS="todo")

    # Then the banner names the class served and a curl for it, which works as printed
    output = dev.output()
    assert "serving 1 class: Todo" in output
    (curl,) = [line.strip() for line in output.splitlines() if line.strip().startswith("curl ")]
    assert f"{dev.url}/v1/objects/Todo/hello/add" in curl and "Counter" not in output
    ran = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, timeout=60)
    assert json.loads(ran.stdout)["result"] == 1, (ran.stdout, ran.stderr)
    # and Alembic's start-up lines are gone
    assert "setup plugin" not in output and "Context impl" not in output

    # `solo call` types key=value by the method's signature: 42 stays a string where it takes a str
    called = dev.solo("call", "Todo/hello", "add", "title=42", "--url", dev.url)
    assert called.returncode == 0, called.stderr
    assert call(dev.url, "Todo/hello", "titles").json()["result"] == ["hello", "42"]

    # An unknown class is one line on stderr, the API's error
    unknown = dev.solo("objects", "info", "Todos/hello", "--url", dev.url)
    assert unknown.returncode == 1 and unknown.stderr.count("\n") == 1, unknown.stderr
    assert json.loads(unknown.stderr)["error"]["code"] == "unknown_class"

    # `solo objects history` works from any directory and goes where --url says
    elsewhere = subprocess.run(
        [sys.executable, "-m", "solo", "objects", "history", "Todo/hello", "--url", dev.url],
        cwd=tmp_path,
        env=dev.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert elsewhere.returncode == 0, elsewhere.stderr
    header, first = elsewhere.stdout.splitlines()[:2]
    assert header.split()[:2] == ["epoch", "worker"] and first.split()[0] == "1"


def test_a_second_solo_dev_on_the_same_var_or_port_says_so_and_exits(solo_dev, tmp_path):
    dev = solo_dev()
    port = dev.url.rsplit(":", 1)[1]

    # When another starts in the same directory, on another port
    same_var = subprocess.run(
        [sys.executable, "-m", "solo", "dev", "--port", "0"],
        cwd=dev.cwd,
        env=dev_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    # Then it says so and exits before migrating or starting anything
    assert same_var.returncode == 1
    assert "another solo dev" in same_var.stderr and str(dev.cwd / "var") in same_var.stderr
    assert "embedded Redis" not in same_var.stdout and "Running upgrade" not in same_var.stderr

    # And on the same port from another directory
    (tmp_path / "other").mkdir()
    same_port = subprocess.run(
        [sys.executable, "-m", "solo", "dev", "--port", port],
        cwd=tmp_path / "other",
        env=dev_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert same_port.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in same_port.stderr
    assert "embedded Redis" not in same_port.stdout and not (tmp_path / "other" / "var" / "solo.db").exists()
    # The first one serves on
    assert call(dev.url, "Counter/still", "increment").json()["result"] == 1


def test_reload_serves_a_changed_module_and_keeps_the_old_one_while_the_change_is_broken(solo_dev):
    # Given `solo dev --reload` serving todo.py, with some state
    dev = solo_dev("--reload", files={"todo.py": TODO}, SOLO_OBJECTS="todo")
    assert call(dev.url, "Todo/list", "add", title="milk").json()["result"] == 1
    source = dev.cwd / "todo.py"

    # When a method is added and the file saved
    source.write_text(TODO + "\n    @rpc\n    def count(self) -> int:\n        return len(self.titles())\n")

    # Then the new method answers, on the state kept
    wait_until(lambda: "reloaded" in dev.output(), 120, "the reload")
    assert call(dev.url, "Todo/list", "count").json()["result"] == 1

    # When the file is broken
    source.write_text(TODO + "\n    @rpc\n    def broken(self) -> int\n")

    # Then the error is shown and the previous version serves on
    wait_until(lambda: "still serving the previous version" in dev.output(), 120, "the refusal")
    assert "SyntaxError" in dev.output()
    assert call(dev.url, "Todo/list", "add", title="eggs").json()["result"] == 2
    assert call(dev.url, "Todo/list", "count").json()["result"] == 2
    assert dev.output().count("reloaded") == 1
