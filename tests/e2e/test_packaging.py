"""solo installs as one import package, `solo`, and runs from any directory.

Builds the wheel with `python -m build`, installs it into a clean venv, and runs
`solo dev` from a directory holding its own `api/` package (which would break if
imported), then calls an object over HTTP; then `solo init` from the wheel.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import zipfile

import httpx

from solo.testing.cluster import free_port, wait_until_ready


def test_the_wheel_holds_one_top_level_package_with_its_data_files(built_wheel):
    names = zipfile.ZipFile(built_wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names}
    assert tops == {"solo", built_wheel.name.split("-py3")[0] + ".dist-info"}
    for expected in (
        "solo/__init__.py",
        "solo/objects/runtime/activation.py",
        "solo/objects/coordination/scripts/enqueue.lua",
        "solo/alembic/env.py",
        "solo/alembic/script.py.mako",
        "solo/alembic/versions/0001_object_catalog.py",
        "solo/examples/shared_migrations/foundation_0001_agents.py",
        "solo/testing/local.py",
        # `solo init`'s templates
        "solo/cli/templates/init/Procfile.tmpl",
        "solo/cli/templates/init/README.md.tmpl",
        "solo/cli/templates/init/package/objects.py.tmpl",
        "solo/cli/templates/init/tests/test_objects.py.tmpl",
    ):
        assert expected in names


def test_solo_dev_from_the_wheel_serves_from_a_directory_with_its_own_api_package(built_wheel, tmp_path):
    # Given: the wheel in a clean venv, and a project whose own `api` package must not be imported
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", str(built_wheel)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    project = tmp_path / "project"
    (project / "api").mkdir(parents=True)
    (project / "api" / "__init__.py").write_text('raise ImportError("the project\'s own api package was imported")\n')
    (project / "workers").mkdir()
    (project / "workers" / "__init__.py").write_text('raise ImportError("the project\'s own workers package")\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOLO_") and k not in ("REDIS_URL", "DATABASE_URL")}
    env.pop("PYTHONPATH", None)
    port = free_port()

    # When: `solo dev` runs there
    log = (tmp_path / "dev.log").open("wb")
    dev = subprocess.Popen(
        [str(venv / "bin" / "solo"), "dev", "--port", str(port)],
        cwd=project,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        ready = wait_until_ready(url, 120, dev)  # a bound on waiting, not a timing assertion
        assert ready, (tmp_path / "dev.log").read_text(errors="replace")

        # Then: objects answer (the project's own packages, which raise on import, were never imported)
        response = httpx.post(f"{url}/v1/objects/Counter/packaged/increment", json={"by": 2}, timeout=30)
        assert response.status_code == 200, (response.text, (tmp_path / "dev.log").read_text(errors="replace"))
        assert response.json()["result"] == 2
    finally:
        os.killpg(dev.pid, signal.SIGTERM)
        try:
            dev.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(dev.pid, signal.SIGKILL)
            dev.wait()
        log.close()
    assert "own api package" not in (tmp_path / "dev.log").read_text(errors="replace")

    # And `solo init` finds its templates in the installed wheel
    made = subprocess.run(
        [str(venv / "bin" / "solo"), "init", "wheelproject"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stdout + made.stderr
    assert "LocalSystem" in (tmp_path / "wheelproject" / "tests" / "test_objects.py").read_text()
