"""Agent over HTTP: configuration, memories, feedback and replies through the model interface."""

from __future__ import annotations

import pytest

from tests.examples.conftest import CallFailed


def failure(call) -> CallFailed:
    with pytest.raises(CallFailed) as caught:
        call()
    return caught.value


def test_configuration_updates_are_validated_and_all_or_nothing(api, run_id):
    agent = f"Agent/kira-{run_id}"
    assert api.call(agent, "get_config") == {
        "name": "Kira",
        "persona": "",
        "system_prompt": "",
        "model": "local",
        "temperature": 0.7,
        "max_tokens": 1024,
        "tools": [],
        "updated_ms": None,
    }

    config = api.call(agent, "update_config", persona="warm and concise", temperature=0.2, tools=["search", "crm"])
    assert (config["persona"], config["temperature"], config["tools"]) == ("warm and concise", 0.2, ["search", "crm"])
    assert config["updated_ms"] > 0

    # One bad value refuses the whole update: the good one in the same call is not written either.
    error = failure(lambda: api.call(agent, "update_config", name="Nova", temperature=3.5))
    assert (error.status, error.error["code"]) == (400, "invalid_config")
    assert "temperature" in error.error["message"]
    error = failure(lambda: api.call(agent, "update_config", tools=["crm", "crm"]))
    assert error.error["code"] == "invalid_config"
    error = failure(lambda: api.call(agent, "update_config"))
    assert error.error["code"] == "invalid_config"
    error = failure(lambda: api.call(agent, "update_config", max_tokens="many"))
    assert (error.status, error.error["code"]) == (422, "invalid_arguments")
    assert api.call(agent, "get_config") == config


def test_recall_orders_by_importance_and_counts_each_access(api, run_id):
    agent = f"Agent/memory-{run_id}"
    low = api.call(agent, "add_memory", type="fact", content="Office closes at 6pm", importance=0.2)
    high = api.call(agent, "add_memory", type="fact", content="Enterprise plan includes SSO", importance=0.9)
    style = api.call(agent, "add_memory", type="style", content="Customers like short answers")
    assert (low["access_count"], low["last_accessed_ms"]) == (0, None)

    recalled = api.call(agent, "recall_memories", min_importance=0.3)
    assert [m["id"] for m in recalled] == [high["id"], style["id"]]
    assert all(m["access_count"] == 1 and m["last_accessed_ms"] for m in recalled)

    recalled = api.call(agent, "recall_memories", type="fact", limit=1)
    assert [(m["id"], m["access_count"]) for m in recalled] == [(high["id"], 2)]
    counts = {m["id"]: m["access_count"] for m in api.call(agent, "list_memories")}
    assert counts == {low["id"]: 0, high["id"]: 2, style["id"]: 1}  # listing is not an access

    assert api.call(agent, "forget_memory", memory_id=low["id"]) is True
    assert api.call(agent, "forget_memory", memory_id=low["id"]) is False

    for bad in ({"importance": 1.5}, {"content": "  "}, {"type": ""}):
        args = {"type": "fact", "content": "x", "importance": 0.5, **bad}
        assert failure(lambda args=args: api.call(agent, "add_memory", **args)).status == 400
    assert failure(lambda: api.call(agent, "recall_memories", limit=0)).error["code"] == "invalid_argument"
    assert len(api.call(agent, "list_memories")) == 2


def test_positive_feedback_becomes_a_memory_and_bad_ratings_are_refused(api, run_id):
    agent = f"Agent/feedback-{run_id}"
    good = api.call(agent, "record_feedback", rating=5, comment="clear pricing answer", conversation_id="c1")
    poor = api.call(agent, "record_feedback", rating=2, comment="too long")
    assert good["memory_id"] is not None and poor["memory_id"] is None

    [memory] = api.call(agent, "list_memories")
    assert (memory["id"], memory["type"], memory["importance"]) == (good["memory_id"], "positive_feedback", 0.7)
    assert "clear pricing answer" in memory["content"] and "conversation c1" in memory["content"]

    for rating in (0, 6):
        error = failure(lambda rating=rating: api.call(agent, "record_feedback", rating=rating))
        assert (error.status, error.error["code"]) == (400, "invalid_rating")
    assert failure(lambda: api.call(agent, "record_feedback", rating=4.5)).status == 422
    stats = api.call(agent, "stats")
    assert (stats["feedback"], stats["average_rating"], stats["memories"]) == (2, 3.5, 1)


def test_replies_use_config_memories_and_context_and_are_deterministic(api, run_id):
    agent = f"Agent/reply-{run_id}"
    api.call(agent, "update_config", name="Ana", persona="patient teacher")
    api.call(agent, "add_memory", type="fact", content="The pricing course costs 49 euros", importance=0.9)
    api.call(agent, "add_memory", type="fact", content="Too unimportant to recall", importance=0.1)
    messages = [
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi! How can I help?"},
        {"role": "user", "content": "How much is the pricing course?"},
    ]

    first = api.call(agent, "generate_response", messages=messages, customer_context="- Customer name: Joana")
    assert first["model"] == "local" and first["memories_used"] == 1
    assert "How much is the pricing course?" in first["response"]
    assert "The pricing course costs 49 euros" in first["response"]
    assert "Too unimportant" not in first["response"]
    # Same input, same output: the local model is deterministic.
    assert api.call(agent, "generate_response", messages=messages, customer_context="- Customer name: Joana") == first

    for bad in (
        [],
        [{"role": "system", "content": "obey"}],
        [{"role": "user", "content": "hi", "x": "y"}],
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
    ):
        error = failure(lambda bad=bad: api.call(agent, "generate_response", messages=bad))
        assert (error.status, error.error["code"]) == (400, "invalid_messages")
    error = failure(lambda: api.call(agent, "generate_response", messages=[{"role": "user", "content": 3}]))
    assert error.status == 422


def test_a_reply_can_fetch_the_customer_context_from_the_customer_object(api, run_id):
    agent, customer = f"Agent/sales-{run_id}", f"cust-{run_id}"
    api.call(f"Customer/{customer}", "create", tenant=f"acme-{run_id}", name="Joana Silva", company="Lisbon Yoga")
    api.call(f"Customer/{customer}", "add_key_fact", fact="Runs three yoga studios")

    reply = api.call(
        agent, "generate_response", messages=[{"role": "user", "content": "How many yoga studios?"}], customer=customer
    )
    assert "Runs three yoga studios" in reply["response"]

    error = failure(
        lambda: api.call(agent, "generate_response", messages=[{"role": "user", "content": "hi"}], customer="nobody")
    )
    assert (error.status, error.error["code"]) == (404, "customer_not_found")


def test_configuration_and_memories_survive_a_worker_restart_but_the_reply_counter_does_not(api, solo, run_id):
    agent = f"Agent/durable-{run_id}"
    api.call(agent, "update_config", name="Durable", max_tokens=64)
    memory = api.call(agent, "add_memory", type="fact", content="Survives kill -9", importance=0.8)
    api.call(agent, "generate_response", messages=[{"role": "user", "content": "anything to survive?"}])
    assert api.call(agent, "stats")["replies_since_start"] == 1

    solo.restart_workers()

    assert api.call(agent, "get_config")["name"] == "Durable"
    [after] = api.call(agent, "list_memories")
    assert (after["id"], after["content"], after["access_count"]) == (memory["id"], "Survives kill -9", 1)
    assert api.call(agent, "stats")["replies_since_start"] == 0  # in-memory only: a new activation starts at 0
