"""The `solo` command as a new user meets it: one clear line for each failure, never a traceback; a
version; a description for every subcommand; typed `solo call` arguments; `delete` asks first.

The commands run as `solo` does (cli.main.main), in this process.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import httpx
import pytest

from solo.cli.arguments import method_parameters, parse_kv, typed_value
from solo.cli.main import build_parser, main
from solo.cli.served import Served, ServedClass, example_call, example_solo_call
from solo.testing.cluster import free_port


@pytest.fixture
def nothing_listening(tmp_path, monkeypatch) -> str:
    for name in ("SOLO_AUTH", "SOLO_API_KEY", "SOLO_OBJECTS", "SOLO_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'var' / 'solo.db'}")
    return f"http://127.0.0.1:{free_port()}"  # a port nobody listens on


def solo(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "argv",
    [
        ("call", "Counter/a", "increment", "by=2"),
        ("objects", "info", "Counter/a"),
        ("objects", "history", "Counter/a"),
        ("objects", "ls", "--json"),
        ("alarms", "ls"),
    ],
)
def test_a_server_that_is_down_is_one_line_on_stderr_and_a_failure(nothing_listening, capsys, argv):
    code, out, err = solo(capsys, *argv, "--url", nothing_listening)
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1, err
    assert err.startswith(f"solo: cannot reach the API at {nothing_listening}")
    assert "Traceback" not in err


def test_a_malformed_address_or_argument_is_one_line_and_status_2(nothing_listening, capsys):
    code, _, err = solo(capsys, "objects", "info", "Counter", "--url", nothing_listening)
    assert (code, err) == (2, "solo: object address 'Counter' must look like Class/name\n")
    code, _, err = solo(capsys, "call", "Counter/a", "increment", "by", "--url", nothing_listening)
    assert (code, err) == (2, "solo: argument 'by' must look like key=value\n")
    code, _, err = solo(capsys, "call", "Counter/a", "increment", "--json-args", "[2]", "--url", nothing_listening)
    assert (code, err) == (2, "solo: --json-args must be a JSON object of keyword arguments\n")


def test_version_prints_the_installed_version(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("solo ") and out.strip() != "solo"


def _subcommands(parser: argparse.ArgumentParser, path: str = "solo"):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield f"{path} {name}", helps.get(name), sub
                yield from _subcommands(sub, f"{path} {name}")


def test_every_subcommand_says_what_it_does_in_the_list_and_atop_its_own_help():
    found = list(_subcommands(build_parser()))
    assert len(found) > 20
    for path, help, sub in found:
        assert help and sub.description == help, path


def test_json_piped_into_a_reader_that_stops_ends_quietly(tmp_path, monkeypatch, capsys):
    # Given `solo keys ls --json | head -c0`: stdout is a pipe whose reader is gone
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'solo.db'}")
    main(["keys", "create", "--tenant", "acme", "--scope", "call"])
    capsys.readouterr()
    read, write = os.pipe()
    os.close(read)
    stdout = os.fdopen(write, "w")
    monkeypatch.setattr(sys, "stdout", stdout)
    try:
        # When the command prints
        code = main(["keys", "ls", "--json"])
    finally:
        stdout.close()
    # Then it exits as a program ended by SIGPIPE would, with nothing on stderr
    assert code == 141
    assert capsys.readouterr().err == ""


def test_delete_without_a_terminal_refuses_unless_told_yes(nothing_listening, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", open(os.devnull))
    code, _, err = solo(capsys, "objects", "delete", "Counter/a", "--url", nothing_listening)
    assert code == 2
    assert err == "solo: delete Counter/a and all its state: pass --yes to confirm (no terminal to ask on)\n"
    # With --yes it goes ahead: here to a server that is down
    code, _, err = solo(capsys, "objects", "delete", "Counter/a", "--yes", "--url", nothing_listening)
    assert code == 1 and "cannot reach the API" in err


def test_delete_at_a_terminal_asks_and_a_no_deletes_nothing(nothing_listening, capsys, monkeypatch):
    class Terminal:
        def isatty(self) -> bool:
            return True

    asked = []
    monkeypatch.setattr(sys, "stdin", Terminal())
    monkeypatch.setattr("builtins.input", lambda question: asked.append(question) or "n")
    code, _, err = solo(capsys, "objects", "delete", "Counter/a", "--url", nothing_listening)
    assert asked == ["delete Counter/a and all its state? [y/N] "]
    assert (code, err) == (1, "solo: not deleted\n")  # and no request: the server being down did not show


# -- typed arguments -----------------------------------------------------------------------------


def test_a_value_is_what_the_parameter_takes():
    string, integer = {"type": "string"}, {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1}
    assert typed_value("42", string) == "42"
    assert typed_value('"42"', string) == "42"
    assert typed_value("42", integer) == 42
    assert typed_value("null", string) == "null"
    assert typed_value("null", {"anyOf": [string, {"type": "null"}]}) is None
    assert typed_value("true", string) == "true"
    assert typed_value("true", {"type": "boolean"}) is True
    assert typed_value("[1, 2]", {"type": "array", "items": integer}) == [1, 2]
    assert typed_value('["a"]', {"type": "array", "items": integer}) == ["a"]  # wrong either way: the server says
    assert typed_value("a", {"enum": ["a", "b"]}) == "a"
    assert typed_value("1.5", {"type": "number"}) == 1.5
    # No schema (unannotated, or no description): JSON when it parses, else the string
    assert typed_value("42", {}) == 42
    assert typed_value("42", None) == 42
    assert typed_value("hello", None) == "hello"


def test_call_arguments_are_typed_by_the_servers_description_of_the_method():
    from solo.api.openapi import openapi_document
    from solo.objects.registry import load_object_modules

    document = openapi_document(load_object_modules(["solo.examples"]))
    http = httpx.Client(
        base_url="http://solo.test", transport=httpx.MockTransport(lambda request: httpx.Response(200, json=document))
    )
    parameters = method_parameters(http, "Agent", "add_memory")
    assert parse_kv(["type=42", "content=null", "importance=1"], parameters) == {
        "type": "42",
        "content": "null",
        "importance": 1,
    }
    assert parse_kv(["by=2"], method_parameters(http, "Counter", "increment")) == {"by": 2}
    assert method_parameters(http, "Countr", "increment") is None  # the call itself says there is no Countr


def test_the_banner_call_fills_in_the_first_methods_required_arguments():
    served = Served(
        (
            ServedClass(
                "Todo",
                {
                    "add": {
                        "title": {"schema": {"type": "string"}, "required": True},
                        "done": {"schema": {"type": "boolean"}, "required": False},
                    }
                },
            ),
        ),
        (),
    )
    call = example_call("http://127.0.0.1:8000", served)
    assert call == 'curl -s -X POST http://127.0.0.1:8000/v1/objects/Todo/hello/add -d \'{"title": "hello"}\''
    assert json.loads(call.split(" -d ")[1].strip("'")) == {"title": "hello"}


def test_the_banner_solo_call_names_the_url_only_when_solo_call_would_not_find_it():
    served = Served((ServedClass("Todo", {"add": {"title": {"schema": {"type": "string"}, "required": True}}}),), ())
    default = "http://127.0.0.1:8000"
    assert example_solo_call(default, served, default_url=default) == "solo call Todo/hello add title=hello"
    assert (
        example_solo_call("http://127.0.0.1:8123", served, default_url=default)
        == "solo call Todo/hello add title=hello --url http://127.0.0.1:8123"
    )
    assert example_solo_call(default, Served((), ()), default_url=default) is None


def test_solo_dev_takes_solo_objects_from_the_projects_dotenv(tmp_path):
    from solo.cli.dev import dotenv_objects

    dotenv = tmp_path / ".env"
    assert dotenv_objects(dotenv) is None  # no file
    dotenv.write_text("# solo init's\nREDIS_URL=redis://x\nexport SOLO_OBJECTS='myapp.objects'  # the classes\n")
    assert dotenv_objects(dotenv) == "myapp.objects"
    dotenv.write_text("SOLO_OBJECTS=\n")
    assert dotenv_objects(dotenv) is None
