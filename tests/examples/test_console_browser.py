"""The operator console in a real browser: Playwright driving the system's chromium.

The examples served by real processes with SOLO_AUTH=keys. An operator pastes a key into the
login form, finds a Counter by its name, evicts it from its page, and after the next call the
page shows one activation more. With SOLO_CONSOLE_SCREENSHOTS=<dir> the test also saves the
main pages as PNGs there (docs/console/ holds the committed ones: `make console-screenshots`).
"""

from __future__ import annotations

import os
import re
import time
import uuid
from pathlib import Path

import httpx
import pytest
import redis

from solo.objects.state.keys import KeyStore
from solo.objects.state.schema import make_engine
from solo.testing.cluster import process_env
from tests.conftest import delete_prefix
from tests.examples.conftest import ExampleSystem

BOUND_MS = 30_000  # a bound on waiting, not a timing
BOUND_S = BOUND_MS / 1000
SCREENSHOTS = "SOLO_CONSOLE_SCREENSHOTS"


@pytest.fixture(scope="module")
def console_solo(real_redis_url, postgres_url, tmp_path_factory):
    """The examples behind API keys: an API process and two workers; `.operator` is an operator key."""
    prefix = f"solo-test-{uuid.uuid4().hex[:10]}"
    tmp = tmp_path_factory.mktemp("console")
    env = process_env(
        redis_url=real_redis_url,
        database_url=postgres_url,
        key_prefix=prefix,
        data_dir=tmp / "objects",
        auth="keys",
        SOLO_OBJECTS="solo.examples",
        SOLO_NAMESPACE=prefix,
    )
    system = ExampleSystem(env, tmp)
    engine = make_engine(postgres_url)
    try:
        system.start_api()  # first: on a loaded machine it is the one waited for
        system.start_worker()
        system.start_worker()
        system.operator = KeyStore(engine).create("default", "operator", label="console browser test").token
        yield system
    finally:
        system.stop()
        engine.dispose()
        client = redis.Redis.from_url(real_redis_url)
        delete_prefix(client, prefix)
        client.close()


def call(system, address: str, method: str, **args) -> object:
    headers = {"Authorization": f"Bearer {system.operator}"}
    response = httpx.post(f"{system.url}/v1/objects/{address}/{method}", json=args, headers=headers, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()["result"]


def reload_until(page, selector: str, wanted: str) -> None:
    """Reload until `selector`'s text is `wanted` (the page is rendered on the server: no live update)."""
    deadline = time.monotonic() + BOUND_S
    while page.locator(selector).inner_text().strip() != wanted and time.monotonic() < deadline:
        page.wait_for_timeout(200)
        page.reload()
    assert page.locator(selector).inner_text().strip() == wanted


def test_an_operator_signs_in_finds_a_counter_evicts_it_and_sees_the_next_call_activate_it_again(
    console_solo, chromium
):
    from playwright.sync_api import expect, sync_playwright

    shots = Path(os.environ[SCREENSHOTS]) if os.environ.get(SCREENSHOTS) else None
    run = uuid.uuid4().hex[:6]
    name = f"console-{run}"
    call(console_solo, f"Counter/{name}", "increment", by=3)
    for other in ("alpha", "beta", "gamma"):  # company in the listing
        call(console_solo, f"Counter/{other}-{run}", "increment", by=1)
    call(console_solo, f"CameraPoller/lobby-{run}", "configure")  # an object with a schedule, for the alarms page

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            # Given the console asks for a key
            page.goto(f"{console_solo.url}/console")
            expect(page).to_have_url(re.compile(r"/console/login$"), timeout=BOUND_MS)
            if shots:
                page.screenshot(path=str(shots / "login.png"))
            page.fill("#key", console_solo.operator)
            page.click("#sign-in")
            expect(page).to_have_url(re.compile(r"/console/objects$"), timeout=BOUND_MS)

            # When the operator searches for the counter by its name's prefix
            page.fill("#prefix", name)
            page.click("#search button[type=submit]")
            expect(page.locator("#objects tbody tr")).to_have_count(1, timeout=BOUND_MS)
            if shots:
                page.fill("#prefix", "")
                page.click("#search button[type=submit]")
                page.screenshot(path=str(shots / "objects.png"), full_page=True)
                page.fill("#prefix", name)
                page.click("#search button[type=submit]")
            page.click(f"text=Counter/{name}")
            expect(page.locator("h1")).to_have_text(f"Counter/{name}", timeout=BOUND_MS)
            expect(page.locator("#activations")).to_have_text("1")
            expect(page.locator("#active")).to_contain_text("yes")
            if shots:
                page.screenshot(path=str(shots / "object.png"), full_page=True)

            # and evicts it
            page.click("#evict")
            expect(page.locator("#notice")).to_contain_text("evict", timeout=BOUND_MS)
            reload_until(page, "#active", "no")  # its owner let go after the batch in hand

            # Then the next call hydrates it afresh: one activation more, and the state is intact
            assert call(console_solo, f"Counter/{name}", "increment", by=1) == 4
            page.reload()
            expect(page.locator("#activations")).to_have_text("2", timeout=BOUND_MS)
            expect(page.locator("#active")).to_contain_text("yes")

            page.goto(f"{console_solo.url}/console/alarms")
            expect(page.locator("#alarm-list")).to_contain_text(f"CameraPoller/lobby-{run}", timeout=BOUND_MS)
            if shots:
                page.screenshot(path=str(shots / "alarms.png"), full_page=True)
                for other_page in ("workers", "metrics"):
                    page.goto(f"{console_solo.url}/console/{other_page}")
                    page.screenshot(path=str(shots / f"{other_page}.png"), full_page=True)

            # Signing out ends the session
            page.click("#logout")
            expect(page).to_have_url(re.compile(r"/console/login$"), timeout=BOUND_MS)
            page.goto(f"{console_solo.url}/console/objects")
            expect(page).to_have_url(re.compile(r"/console/login$"), timeout=BOUND_MS)
        finally:
            browser.close()
