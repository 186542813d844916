"""`solo init NAME`: a project that passes its own tests, on solo.testing.LocalSystem, from the start."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from solo.cli.init import InitError, init_project, package_name
from solo.cli.main import main as solo


def test_a_new_project_passes_its_own_tests(tmp_path, monkeypatch, capsys):
    # Given: `solo init` in an empty folder
    monkeypatch.chdir(tmp_path)
    assert solo(["init", "shop-front"]) == 0
    project = tmp_path / "shop-front"
    assert "SOLO_OBJECTS=shop_front.objects solo dev" in capsys.readouterr().out

    # Then: what a deployment and a reader need is there
    for path in ("Procfile", "README.md", ".env", "pyproject.toml", "shop_front/objects.py", "tests/test_objects.py"):
        assert (project / path).is_file(), path
    assert "worker: solo worker" in (project / "Procfile").read_text()
    assert (project / ".env").read_text() == "SOLO_OBJECTS=shop_front.objects\n"
    assert "pytest" in (project / "README.md").read_text()
    assert "from solo.testing import LocalSystem" in (project / "tests" / "test_objects.py").read_text()

    # When: its tests run, as its README says, in a process of their own
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOLO_") and k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    # Then: they pass
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout


@pytest.mark.parametrize("name", ["", "1st", "a b", "../up", "x" * 65, "solo", "tests", "json", "class"])
def test_names_that_cannot_be_a_project_are_refused(name):
    with pytest.raises(InitError):
        package_name(name)


def test_an_existing_folder_is_left_alone(tmp_path, monkeypatch, capsys):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    monkeypatch.chdir(tmp_path)

    assert solo(["init", "taken"]) == 2

    assert "already exists" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["keep.txt"]


def test_the_package_is_the_name_in_lower_case_with_underscores(tmp_path):
    root = init_project("My-App", tmp_path)
    assert (root / "my_app" / "objects.py").is_file()
    assert "my_app.objects" in (root / "README.md").read_text()
