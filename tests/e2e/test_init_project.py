"""A project made by `solo init` is served by `solo dev`, and its object answers over HTTP."""

from __future__ import annotations

import httpx

from solo.cli.init import init_project


def test_solo_dev_serves_a_new_projects_object(solo_dev, tmp_path):
    # Given: a new project, importable as its README's `pip install -e .` makes it
    project = init_project("garden", tmp_path)

    # When: `solo dev` serves its module, as the README says
    dev = solo_dev(SOLO_OBJECTS="garden.objects", PYTHONPATH=str(project))

    # Then: its Counter counts, and refuses a bad step with the class's own error code
    url = f"{dev.url}/v1/objects/Counter/hello"
    first = httpx.post(f"{url}/increment", json={"by": 2}, timeout=30)
    assert first.status_code == 200, (first.text, dev.output())
    assert first.json()["result"] == 2
    refused = httpx.post(f"{url}/increment", json={"by": 0}, timeout=30)
    assert (refused.status_code, refused.json()["error"]["code"]) == (400, "bad_step")
    assert httpx.post(f"{url}/get", json={}, timeout=30).json()["result"] == 2
