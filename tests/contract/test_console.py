"""The console (/console) over HTTP, in-process, on both backends: sign-in, its cookie, CSRF, scopes.

What a browser does is in tests/examples/test_console_browser.py (Playwright and chromium); here
the rules: only the login form is reached without a session; the cookie is signed, HttpOnly,
SameSite=Strict and holds no key; every action needs the session's CSRF token; a key that may
not operate is refused with a message that says why.
"""

from __future__ import annotations

import re
import time
import uuid

import pytest
from itsdangerous import URLSafeTimedSerializer

from solo.api.console.session import COOKIE_NAME, SALT
from solo.objects.state.keys import parse_token
from solo.testing.inprocess import InProcessSystem

pytestmark = pytest.mark.system(auth="keys")

POLL_LIMIT_S = 20.0  # a bound on waiting, not a timing assertion
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def unique() -> str:
    return uuid.uuid4().hex[:12]


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, html
    return found.group(1)


def sign_in(http, token: str):
    """The login form, then the key pasted into it; returns the answer to the POST."""
    form = http.get("/console/login")
    assert form.status_code == 200
    return http.post("/console/login", data={"key": token, "csrf": csrf_of(form.text)}, follow_redirects=False)


def make_counter(http, token: str, name: str, tenant: str | None = None) -> None:
    headers = {"Authorization": f"Bearer {token}", **({"Solo-Tenant": tenant} if tenant else {})}
    response = http.post(f"/v1/objects/Counter/{name}/increment", json={"by": 1}, headers=headers)
    assert response.status_code == 200, response.text


def test_only_the_login_form_is_reached_without_a_session_not_even_with_a_bearer_key(http, keys):
    operator = keys.create("default", "operator")
    bearer = {"Authorization": f"Bearer {operator.token}"}

    assert http.get("/console/login").status_code == 200
    assert http.get("/console/static/console.js").status_code == 200
    for path in ("/console", "/console/objects", "/console/alarms", "/console/workers", "/console/objects/Counter/a"):
        response = http.get(path, headers=bearer, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"] == "/console/login"
    # An action is not redirected: it is refused, as JSON, and nothing happens.
    response = http.post("/console/objects/Counter/a/evict", data={"csrf": "x"}, headers=bearer)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"


def test_an_operator_key_signs_in_and_the_cookie_is_signed_httponly_strict_and_holds_no_key(http, keys):
    operator = keys.create("default", "operator")
    name = f"console-{unique()}"
    make_counter(http, operator.token, name)

    response = sign_in(http, operator.token)

    assert response.status_code == 303
    assert response.headers["location"] == "/console/objects"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    value = http.cookies[COOKIE_NAME]
    _, secret = parse_token(operator.token)
    assert secret not in value and operator.token not in value
    page = http.get(f"/console/objects?prefix={name}")
    assert page.status_code == 200
    assert f"Counter/{name}" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'self'")


def test_a_session_signed_with_another_secret_or_changed_is_not_one(http, keys):
    operator = keys.create("default", "operator")
    assert sign_in(http, operator.token).status_code == 303
    genuine = http.cookies[COOKIE_NAME]
    forged = URLSafeTimedSerializer(b"not the deployment's secret", salt=SALT).dumps(
        {"c": "x", "in": True, "k": operator.key.id, "t": None}
    )
    for value in (forged, genuine[:-2] + ("AA" if not genuine.endswith("AA") else "BB")):
        http.cookies.clear()
        http.cookies.set(COOKIE_NAME, value, path="/console")
        response = http.get("/console/objects", follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/console/login"


def test_a_post_without_the_sessions_csrf_token_is_403_and_changes_nothing(http, keys, system):
    operator = keys.create("default", "operator")
    name = f"csrf-{unique()}"
    make_counter(http, operator.token, name)
    assert sign_in(http, operator.token).status_code == 303
    obj = f"/console/objects/Counter/{name}"
    token = csrf_of(http.get(obj).text)

    for data in ({}, {"csrf": ""}, {"csrf": token[:-1] + ("A" if token[-1] != "A" else "B")}):
        for action in ("evict", "purge-queued", "delete"):
            response = http.post(f"{obj}/{action}", data={**data, "confirm": name}, follow_redirects=False)
            assert response.status_code == 403, (action, data)
            assert response.json()["error"]["code"] == "forbidden"
    # A form from another origin is refused even with the token.
    response = http.post(f"{obj}/evict", data={"csrf": token}, headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    # The login form too needs the token its page gave.
    assert http.post("/console/login", data={"key": operator.token}).status_code == 403
    # Nothing was deleted.
    bearer = {"Authorization": f"Bearer {operator.token}"}
    assert http.get(f"/v1/objects/Counter/{name}", headers=bearer).status_code == 200


def test_with_the_token_evict_and_delete_work_and_delete_asks_for_the_name(http, keys):
    operator = keys.create("default", "operator")
    name = f"act-{unique()}"
    make_counter(http, operator.token, name)
    assert sign_in(http, operator.token).status_code == 303
    obj = f"/console/objects/Counter/{name}"
    page = http.get(obj)
    assert re.search(r'id="activations">1<', page.text), page.text
    token = csrf_of(page.text)

    evicted = http.post(f"{obj}/evict", data={"csrf": token}, follow_redirects=False)
    assert evicted.status_code == 303 and evicted.headers["location"].startswith(obj)
    assert "notice=" in evicted.headers["location"]

    exported = http.get(f"{obj}/export")
    assert exported.status_code == 200 and exported.content.startswith(b"SQLite format 3")
    assert "attachment" in exported.headers["content-disposition"]

    assert http.post(f"{obj}/delete", data={"csrf": token, "confirm": "other"}).status_code == 403
    deleted = http.post(f"{obj}/delete", data={"csrf": token, "confirm": name}, follow_redirects=False)
    assert deleted.status_code == 303
    bearer = {"Authorization": f"Bearer {operator.token}"}
    assert http.get(f"/v1/objects/Counter/{name}", headers=bearer).status_code == 404


@pytest.mark.parametrize("scope", ["call"])
def test_a_key_that_may_not_operate_is_refused_with_a_message_that_says_why(http, keys, scope):
    caller = keys.create("default", scope)
    response = sign_in(http, caller.token)
    assert response.status_code == 403
    assert "console needs an admin key" in response.text
    assert COOKIE_NAME in http.cookies  # still the visitor's anonymous session: not signed in
    assert http.get("/console/objects", follow_redirects=False).status_code == 303

    wrong = sign_in(http, f"solo_{'0' * 16}_{'x' * 43}")
    assert wrong.status_code == 401
    assert "not a valid API key" in wrong.text


def test_an_admin_key_sees_its_own_tenant_and_no_operator_page(http, keys):
    operator = keys.create("default", "operator")
    admin = keys.create("acme", "admin")
    mine, theirs = f"mine-{unique()}", f"theirs-{unique()}"
    make_counter(http, admin.token, mine)
    make_counter(http, operator.token, theirs)  # in tenant default

    assert sign_in(http, admin.token).status_code == 303
    listing = http.get("/console/objects").text
    assert f"Counter/{mine}" in listing and f"Counter/{theirs}" not in listing
    for page in ("/console/workers", "/console/metrics"):
        assert http.get(page).status_code == 403
    token = csrf_of(listing)
    assert http.post("/console/tenant", data={"csrf": token, "tenant": "default"}).status_code == 403


def test_an_operator_picks_the_tenant_the_pages_act_in(http, keys):
    operator = keys.create("default", "operator")
    name = f"acme-{unique()}"
    make_counter(http, operator.token, name, tenant="acme")
    assert sign_in(http, operator.token).status_code == 303
    assert f"Counter/{name}" not in http.get("/console/objects").text

    token = csrf_of(http.get("/console/objects").text)
    moved = http.post(
        "/console/tenant", data={"csrf": token, "tenant": "acme", "next": "/console/objects"}, follow_redirects=False
    )
    assert moved.status_code == 303 and moved.headers["location"] == "/console/objects"
    assert f"Counter/{name}" in http.get("/console/objects").text
    object_page = http.get(f"/console/objects/Counter/{name}")
    assert object_page.status_code == 200 and "acme" in object_page.text


def test_the_other_pages_render_and_logout_ends_the_session(http, keys):
    operator = keys.create("default", "operator")
    make_counter(http, operator.token, f"pages-{unique()}")
    assert sign_in(http, operator.token).status_code == 303
    for page in ("/console/alarms", "/console/alarms?state=failed", "/console/workers", "/console/metrics"):
        response = http.get(page)
        assert response.status_code == 200, page
        assert response.headers["content-type"].startswith("text/html")
    metrics = http.get("/console/metrics").text
    assert "solo_api_waiting_calls" in metrics
    assert re.search(r"alarms pending \(tenant default\)</td><td class=\"num\">0<", metrics), metrics

    # An object with a schedule: the alarms page lists it, and the fleet's counts take it in.
    camera = f"cam-{unique()}"
    bearer = {"Authorization": f"Bearer {operator.token}"}
    assert http.post(f"/v1/objects/CameraPoller/{camera}/configure", json={}, headers=bearer).status_code == 200
    assert f"CameraPoller/{camera}" in http.get("/console/alarms?state=pending").text
    assert f"CameraPoller/{camera}" not in http.get("/console/alarms?state=failed").text
    metrics = http.get("/console/metrics").text
    assert re.search(r"alarms pending \(tenant default\)</td><td class=\"num\">1<", metrics), metrics

    token = csrf_of(http.get("/console/objects").text)
    out = http.post("/console/logout", data={"csrf": token}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/console/login"
    assert http.get("/console/objects", follow_redirects=False).status_code == 303


def test_revoking_the_key_signs_its_sessions_out(http, keys):
    operator = keys.create("default", "operator")
    assert sign_in(http, operator.token).status_code == 303
    assert http.get("/console/objects", follow_redirects=False).status_code == 200

    keys.revoke(operator.key.id)

    # Within the key cache's life (about 2 s) the session stops working.
    deadline = time.monotonic() + POLL_LIMIT_S
    while http.get("/console/objects", follow_redirects=False).status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    response = http.get("/console/objects", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/console/login"
    # The login form is shown again (no loop back to the pages), and a valid key signs in anew.
    assert http.get("/console/login", follow_redirects=False).status_code == 200
    assert sign_in(http, keys.create("default", "operator").token).status_code == 303


def test_with_auth_off_the_form_asks_for_no_key_and_still_needs_its_token(settings, redis_client, async_redis_client):
    system = InProcessSystem(settings, redis_client, async_redis_client)  # the fixture's SOLO_AUTH=off
    with system.running() as http:
        assert http.get("/console/objects", follow_redirects=False).status_code == 303
        form = http.get("/console/login")
        assert 'name="key"' not in form.text and "SOLO_AUTH=off" in form.text
        assert http.post("/console/login", data={}).status_code == 403
        signed = http.post("/console/login", data={"csrf": csrf_of(form.text)}, follow_redirects=False)
        assert signed.status_code == 303
        assert "(auth off)" in http.get("/console/objects").text


def test_orphaned_alarms_are_counted_by_class_and_purged_from_the_alarms_page(http, keys, system, redis_client):
    from tests.contract.test_orphaned_alarms import due_names, leave_alarm

    operator = keys.create("default", "operator")
    name = f"retired-{unique()}"
    leave_alarm(system, redis_client, "Retired", name, int(time.time() * 1000) + 30_000)
    assert sign_in(http, operator.token).status_code == 303
    page = http.get("/console/alarms").text
    assert 'id="orphaned"' in page and f"Retired/{name}" in page

    purged = http.post(
        "/console/alarms/purge", data={"csrf": csrf_of(page), "class": "Retired"}, follow_redirects=False
    )

    assert purged.status_code == 303 and "purged-alarms" in purged.headers["location"]
    assert f"Retired/{name}" not in http.get("/console/alarms").text
    assert name not in due_names(redis_client, system.settings)
    # A served class's alarms are its objects' to cancel: refused, as the API refuses it.
    token = csrf_of(http.get("/console/alarms").text)
    assert http.post("/console/alarms/purge", data={"csrf": token, "class": "Counter"}).status_code == 409


def test_the_workers_page_lists_the_live_workers_from_their_heartbeats(http, keys, system):
    operator = keys.create("default", "operator")
    system.host.beat()  # the maintainer does this every second; now, so the test need not wait
    assert sign_in(http, operator.token).status_code == 303
    page = http.get("/console/workers").text
    assert system.settings.worker_id in page and "No live worker" not in page
