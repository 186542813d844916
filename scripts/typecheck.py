"""Type-check the `solo` package with mypy, each module under the name it is imported by.

pyproject.toml maps the repository's folders onto subpackages of `solo` ([tool.setuptools]
package-dir: objects/ is `solo.objects`, api/ is `solo.api`, ...). The editable install
serves that mapping through an import hook, which mypy does not follow, and given the folder
mypy would call objects/definition.py `objects.definition`. So this script reads the mapping,
lists every module of the listed packages under its real name (leaving out what [tool.mypy]
`exclude` matches) and hands the list to mypy. Settings come from [tool.mypy] in
pyproject.toml (strict for `solo.objects.*`); errors name the repository's files.

    .venv/bin/python scripts/typecheck.py [mypy options, no targets]   # what `make typecheck` runs
"""

from __future__ import annotations

import os
import sys
import time
import tomllib
from pathlib import Path

from mypy import util
from mypy.fscache import FileSystemCache
from mypy.main import process_options, run_build
from mypy.modulefinder import BuildSource, matches_exclude
from mypy.options import Options

ROOT = Path(__file__).resolve().parent.parent


def package_folder(package: str, package_dir: dict[str, str]) -> Path:
    """The folder setuptools takes `package` from: its longest mapped prefix, then the rest."""
    parts = package.split(".")
    for n in range(len(parts), 0, -1):
        prefix = ".".join(parts[:n])
        if prefix in package_dir:
            return Path(package_dir[prefix], *parts[n:])
    return Path(*parts)


def package_sources(options: Options, fscache: FileSystemCache) -> list[BuildSource]:
    """Every module of the packages pyproject.toml lists, with its path relative to ROOT."""
    setuptools = tomllib.loads(Path("pyproject.toml").read_text())["tool"]["setuptools"]
    sources = []
    for package in setuptools["packages"]:
        for path in sorted(package_folder(package, setuptools["package-dir"]).glob("*.py")):
            if matches_exclude(str(path), options.exclude, fscache, options.verbosity >= 2):
                continue
            module = package if path.stem == "__init__" else f"{package}.{path.stem}"
            sources.append(BuildSource(str(path), module))
    return sources


def main() -> None:
    os.chdir(ROOT)  # pyproject.toml is found here and paths in messages are relative to it
    fscache = FileSystemCache()
    targets, options = process_options(sys.argv[1:], require_targets=False, fscache=fscache)
    if targets:
        sys.exit("scripts/typecheck.py chooses the modules itself; pass mypy options only")
    sources = [*package_sources(options, fscache), BuildSource("scripts/typecheck.py", "typecheck")]
    _, messages, blockers = run_build(sources, options, fscache, time.time(), sys.stdout, sys.stderr)
    formatter = util.FancyFormatter(sys.stdout, sys.stderr, options.hide_error_codes)
    n_errors, _, n_files = util.count_stats(messages)
    if n_errors:
        print(formatter.format_error(n_errors, n_files, len(sources), blockers=blockers))
        sys.exit(2 if blockers else 1)
    print(formatter.format_success(len(sources)))


if __name__ == "__main__":
    main()
