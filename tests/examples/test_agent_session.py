"""AgentSession over HTTP: history, preferences and sync progress survive reloads and worker restarts."""

import httpx
import pytest

from tests.examples.conftest import Api, CallFailed


def test_a_new_client_and_a_worker_restart_find_the_same_session(solo, api, run_id):
    user = f"AgentSession/user-{run_id}"
    for i in range(5):
        api.call(user, "append", role="user" if i % 2 == 0 else "assistant", content=f"message {i}")
    api.call(user, "set_preferences", changes={"theme": "dark", "font_scale": 1.25})
    api.call(user, "record_sync", source="waypoints", done=40, total=100)
    before = api.call(user, "snapshot")

    # A page reload: a new HTTP client, nothing carried over from the first one.
    with httpx.Client(base_url=solo.url, timeout=60) as http:
        assert Api(http).call(user, "snapshot") == before
    solo.restart_workers()
    after = api.call(user, "snapshot")

    assert after == before
    assert after["message_count"] == 5
    assert [m["content"] for m in after["recent"]["messages"]] == [f"message {i}" for i in range(5)]
    assert after["preferences"]["theme"] == "dark" and after["preferences"]["font_scale"] == 1.25
    assert after["sync"] == [before["sync"][0]] and after["sync"][0]["done"] == 40


def test_history_pages_from_the_newest_message_back(api, run_id):
    user = f"AgentSession/pager-{run_id}"
    seqs = [api.call(user, "append", role="user", content=f"m{i}")["seq"] for i in range(7)]

    newest = api.call(user, "history", limit=3)
    middle = api.call(user, "history", before=newest["before"], limit=3)
    oldest = api.call(user, "history", before=middle["before"], limit=3)

    assert [m["seq"] for m in newest["messages"]] == seqs[4:]
    assert [m["seq"] for m in middle["messages"]] == seqs[1:4]
    assert [m["seq"] for m in oldest["messages"]] == seqs[:1]
    assert oldest["before"] is None


def test_a_message_resent_with_its_client_id_is_kept_once(api, run_id):
    user = f"AgentSession/resend-{run_id}"
    first = api.call(user, "append", role="user", content="hello", client_id="draft-1")
    again = api.call(user, "append", role="user", content="hello", client_id="draft-1")

    assert again == first
    assert api.call(user, "snapshot")["message_count"] == 1


def test_preferences_start_at_defaults_and_null_restores_one(api, run_id):
    user = f"AgentSession/prefs-{run_id}"
    assert api.call(user, "preferences")["units"] == "imperial"

    api.call(user, "set_preferences", changes={"units": "metric", "sidebar_open": False})
    restored = api.call(user, "set_preferences", changes={"units": None})

    assert restored["units"] == "imperial" and restored["sidebar_open"] is False


@pytest.mark.parametrize(
    ("method", "args", "status", "code"),
    [
        ("append", {"role": "robot", "content": "hi"}, 422, "invalid_arguments"),
        ("append", {"role": "user", "content": "   "}, 400, "invalid_message"),
        ("history", {"limit": 0}, 400, "invalid_limit"),
        ("set_preferences", {"changes": {"theme": "dark", "colour": "red"}}, 400, "invalid_preference"),
        ("set_preferences", {"changes": {"theme": "neon"}}, 400, "invalid_preference"),
        ("set_preferences", {"changes": {"font_scale": 5}}, 400, "invalid_preference"),
        ("record_sync", {"source": "waypoints", "done": 5, "total": 2}, 400, "invalid_sync"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(api, run_id, method, args, status, code):
    user = f"AgentSession/bad-{run_id}"
    before = api.call(user, "snapshot")

    with pytest.raises(CallFailed) as failed:
        api.call(user, method, **args)

    assert (failed.value.status, failed.value.error["code"]) == (status, code)
    assert api.call(user, "snapshot") == before
