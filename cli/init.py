"""`solo init NAME`: a new project folder, from the templates in cli/templates/init/.

The project holds one object class, its tests on `solo.testing.LocalSystem`, a
Procfile, a `.env` naming the served module and a README. Templates are package data
(`*.tmpl`, so that neither Python nor the linters take them for solo's own modules);
`{{name}}` and `{{package}}` in them are replaced.
"""

from __future__ import annotations

import argparse
import keyword
import re
import sys
from importlib import resources
from pathlib import Path

# template (under templates/init/) -> file in the project; "package" is the project's package
FILES = {
    "README.md.tmpl": "README.md",
    "Procfile.tmpl": "Procfile",
    "env.tmpl": ".env",
    "gitignore.tmpl": ".gitignore",
    "pyproject.toml.tmpl": "pyproject.toml",
    "package/__init__.py.tmpl": "{package}/__init__.py",
    "package/objects.py.tmpl": "{package}/objects.py",
    "tests/test_objects.py.tmpl": "tests/test_objects.py",
}
PROJECT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
TAKEN = {"solo", "tests", "test"}  # a package of these names would hide solo or the tests folder


class InitError(Exception):
    """The project cannot be made (bad name, folder exists): the message says why."""


def package_name(name: str) -> str:
    """The project's import package: its name in lower case, with `-` as `_`."""
    if not PROJECT_NAME.fullmatch(name):
        raise InitError(f"{name!r} is not a project name: a letter, then letters, digits, '-' or '_' (64 at most)")
    package = name.lower().replace("-", "_")
    if keyword.iskeyword(package) or package in TAKEN or package in sys.stdlib_module_names:
        raise InitError(f"{name!r} would make a package named {package!r}, which Python or solo already uses")
    return package


def init_project(name: str, parent: Path) -> Path:
    """Write the project `name` into parent/name (which must not exist yet); returns its folder."""
    package = package_name(name)
    root = parent / name
    if root.exists():
        raise InitError(f"{root} already exists")
    templates = resources.files("solo.cli") / "templates" / "init"
    for template, target in FILES.items():
        text = (templates / template).read_text(encoding="utf-8")
        path = root / target.format(package=package)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.replace("{{name}}", name).replace("{{package}}", package), encoding="utf-8")
    return root


def cmd_init(args: argparse.Namespace) -> int:
    try:
        root = init_project(args.name, Path.cwd())
    except InitError as exc:
        print(f"solo: {exc}", file=sys.stderr)
        return 2
    package = package_name(args.name)
    print(f"created {root}/ with the object class Counter ({package}/objects.py) and its tests. Next:\n")
    print(f"  cd {args.name}")
    print('  pip install -e ".[test]"')
    print("  pytest")
    print(f"  SOLO_OBJECTS={package}.objects solo dev")
    return 0


def add_init_command(sub: argparse._SubParsersAction) -> None:
    what = "create a project folder: one object class, its tests, a Procfile and a README"
    p = sub.add_parser(
        "init",
        help=what,
        description=what,  # the same line in `solo --help` and atop `solo init --help`, as every command's
        epilog="The tests run on solo.testing.LocalSystem: no services needed.",
    )
    p.add_argument("name", metavar="NAME", help="the project's name: its folder and (lower case, '_' for '-') package")
    p.set_defaults(func=cmd_init)
