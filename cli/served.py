"""What the modules in SOLO_OBJECTS serve, found by importing them in a throwaway process.

`solo dev` asks before it starts its processes, and again before each reload: a module that
no longer imports (a syntax error, a class that fails solo's definition checks) is reported
here while the processes already running keep the previous version. The answer also gives
the banner its classes and one call that works, and `--reload` the folders to watch.

`python -m solo.cli.served MODULE...` prints the description as JSON on its last line of
stdout (a module may print at import), or the import's error on stderr with exit status 1.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_MARK = "solo-served: "


class ModulesBroken(Exception):
    """The served modules do not import; the message is what the import printed (its traceback)."""


@dataclass(frozen=True)
class ServedClass:
    name: str
    methods: dict[str, dict[str, Any]]  # method -> {parameter: {"schema": ..., "required": ...}}, in order


@dataclass(frozen=True)
class Served:
    classes: tuple[ServedClass, ...]  # in the order the modules defined them
    watch: tuple[tuple[str, bool], ...]  # (folder, recursive): where the served code lives

    def names(self) -> list[str]:
        return [c.name for c in self.classes]


def inspect_modules(modules: tuple[str, ...], env: dict[str, str], cwd: Path | None = None) -> Served:
    """Import `modules` in a fresh process with `env`; raises ModulesBroken with the error if they fail."""
    done = subprocess.run(
        [sys.executable, "-m", "solo.cli.served", *modules],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith(_MARK)]
    if done.returncode != 0 or not lines:
        raise ModulesBroken(done.stderr.strip() or f"importing {', '.join(modules)} failed")
    found = json.loads(lines[-1][len(_MARK) :])
    classes = tuple(ServedClass(c["name"], c["methods"]) for c in found["classes"])
    return Served(classes, tuple((w[0], w[1]) for w in found["watch"]))


def example_value(schema: dict[str, Any]) -> Any:
    """A value a parameter of this JSON schema accepts, for an example call."""
    if "enum" in schema:
        return schema["enum"][0]
    if "anyOf" in schema:
        options = [s for s in schema["anyOf"] if s.get("type") != "null"] or schema["anyOf"]
        return example_value(options[0])
    kind = schema.get("type")
    kind = kind[0] if isinstance(kind, list) else kind
    examples: dict[Any, Any] = {"integer": 1, "number": 1.5, "boolean": True, "array": [], "object": {}, "null": None}
    return examples.get(kind, "hello")


def _first_call(served: Served) -> tuple[str, str, dict[str, Any]] | None:
    """The first served class's first method, with example values for its required arguments."""
    for cls in served.classes:
        for method, parameters in cls.methods.items():
            return cls.name, method, {n: example_value(p["schema"]) for n, p in parameters.items() if p["required"]}
    return None


def example_call(url: str, served: Served, *, bearer: bool = False) -> str | None:
    """A curl command calling the first served class's first method, with its required arguments."""
    first = _first_call(served)
    if first is None:
        return None
    class_name, method, body = first
    command = f"curl -s -X POST {url}/v1/objects/{class_name}/hello/{method}"
    if body:
        command += f" -d {shlex.quote(json.dumps(body))}"
    if bearer:
        command += ' -H "Authorization: Bearer $SOLO_API_KEY"'
    return command


def example_solo_call(url: str, served: Served, *, default_url: str) -> str | None:
    """The same call as `solo call` gives it: key=value arguments, and `--url` unless the API is where
    `solo call` looks by default (a `solo dev --port 8123` would otherwise be called on 8000)."""
    first = _first_call(served)
    if first is None:
        return None
    class_name, method, body = first
    words = ["solo", "call", f"{class_name}/hello", method]
    words += [f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in body.items()]
    if url.rstrip("/") != default_url.rstrip("/"):
        words += ["--url", url]
    return shlex.join(words)


def _watched(name: str, module: Any) -> tuple[str, bool]:
    """The folder holding a module's code, and whether its subfolders count: a package's or a package
    module's folder and below it (`myapp.objects`: myapp/), a top-level module's folder alone (`todo`: ./)."""
    return str(Path(module.__file__).resolve().parent), hasattr(module, "__path__") or "." in name


def _describe(modules: list[str]) -> dict[str, Any]:
    from solo.objects.registry import load_object_modules

    registry = load_object_modules(modules)
    watch: list[tuple[str, bool]] = []
    for name in modules:
        module = sys.modules[name]
        if getattr(module, "__file__", None) and _watched(name, module) not in watch:
            watch.append(_watched(name, module))
    classes = []
    for class_name in registry.in_definition_order():
        methods = {m: spec.describe()["parameters"] for m, spec in registry.get(class_name).__solo_methods__.items()}
        classes.append({"name": class_name, "methods": methods})
    return {"classes": classes, "watch": watch}


def main(argv: list[str]) -> int:
    from solo.objects import registry

    try:
        described = _describe(argv)
    except BaseException as exc:  # anything the user's code raises at import is the answer
        # The user's frames: not this module's, the registry's or importlib's.
        ours = {__file__, registry.__file__}
        frames = traceback.extract_tb(exc.__traceback__)
        own = [f for f in frames if f.filename not in ours and "importlib" not in f.filename]
        print("Traceback (most recent call last):", file=sys.stderr)
        print("".join(traceback.format_list(own)), end="", file=sys.stderr)
        print("".join(traceback.format_exception_only(exc)), end="", file=sys.stderr)
        return 1
    print(_MARK + json.dumps(described))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
