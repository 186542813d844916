"""The Procfile (Heroku: `release` runs once per deploy) and Procfile.dev (local runners such as honcho
and foreman, which stop every process when one exits) describe the same long-running processes."""

from __future__ import annotations

from honcho.environ import parse_procfile

from tests import REPO


def processes(name: str) -> dict[str, str]:
    return dict(parse_procfile((REPO / name).read_text()).processes)


def test_procfile_dev_is_the_procfile_without_its_release_step():
    procfile, dev = processes("Procfile"), processes("Procfile.dev")
    assert procfile.pop("release") == "solo migrate"
    assert dev == procfile
    assert "solo migrate && honcho start -f Procfile.dev" in (REPO / "Procfile.dev").read_text()
