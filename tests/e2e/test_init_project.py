"""A project made by `solo init` is served by `solo dev`, and its object answers over HTTP."""

from __future__ import annotations

import httpx

from solo.cli.init import init_project


def test_solo_dev_serves_a_new_projects_object(solo_dev, tmp_path):
    # Given: a new project, not installed
    project = init_project("garden", tmp_path)
    files = {str(p.relative_to(project)): p.read_text() for p in project.rglob("*") if p.is_file()}

    # When: a plain `solo dev` runs in its folder (no SOLO_OBJECTS, no PYTHONPATH): it reads ./.env
    dev = solo_dev(files=files)
    assert "serving 1 class: Counter" in dev.output()

    # Then: its Counter counts, and refuses a bad step with the class's own error code
    url = f"{dev.url}/v1/objects/Counter/hello"
    first = httpx.post(f"{url}/increment", json={"by": 2}, timeout=30)
    assert first.status_code == 200, (first.text, dev.output())
    assert first.json()["result"] == 2
    refused = httpx.post(f"{url}/increment", json={"by": 0}, timeout=30)
    assert (refused.status_code, refused.json()["error"]["code"]) == (400, "bad_step")
    assert httpx.post(f"{url}/get", json={}, timeout=30).json()["result"] == 2
