"""Tenant and Customer over HTTP: settings, customers listed from the shared directory, the versioned AI context."""

from __future__ import annotations

import pytest

from tests.examples.conftest import CallFailed


def failure(call) -> CallFailed:
    with pytest.raises(CallFailed) as caught:
        call()
    return caught.value


def listing(api, tenant: str, **filters) -> list[tuple]:
    return [(c["id"], c["name"], c["status"], c["lead_score"]) for c in api.call(tenant, "list_customers", **filters)]


def test_tenant_settings_are_validated(api, run_id):
    tenant = f"Tenant/org-{run_id}"
    settings = api.call(tenant, "get_settings")
    assert settings["display_name"] == f"org-{run_id}" and settings["plan"] == "free"
    assert (settings["max_customers"], settings["customers"], settings["ai_enabled"]) == (100, 0, True)

    settings = api.call(tenant, "update_settings", display_name="Acme", plan="pro", default_language="pt-BR")
    assert (settings["display_name"], settings["max_customers"], settings["default_language"]) == (
        "Acme",
        10000,
        "pt-BR",
    )

    error = failure(lambda: api.call(tenant, "update_settings", display_name="Ok", default_language="Portuguese"))
    assert (error.status, error.error["code"]) == (400, "invalid_settings")
    assert failure(lambda: api.call(tenant, "update_settings", max_customers=0)).error["code"] == "invalid_settings"
    assert failure(lambda: api.call(tenant, "update_settings", plan="platinum")).status == 422
    assert failure(lambda: api.call(tenant, "update_settings")).status == 400
    assert api.call(tenant, "get_settings") == settings


def test_tenant_creates_customers_and_lists_them_from_the_shared_directory(api, run_id):
    tenant, other = f"Tenant/acme-{run_id}", f"Tenant/other-{run_id}"
    ana, bea, cid = f"ana-{run_id}", f"bea-{run_id}", f"cid-{run_id}"
    api.call(tenant, "update_settings", default_language="pt")
    profile = api.call(tenant, "add_customer", customer_id=ana, name="Ana", company="Yoga Lx", lead_score=40)
    assert (profile["id"], profile["tenant"], profile["language"]) == (ana, f"acme-{run_id}", "pt")
    api.call(tenant, "add_customer", customer_id=bea, name="Bea", status="customer", lead_score=90, language="en")
    api.call(other, "add_customer", customer_id=cid, name="Cid")

    assert listing(api, tenant) == [(ana, "Ana", "lead", 40), (bea, "Bea", "customer", 90)]
    assert listing(api, tenant, status="customer") == [(bea, "Bea", "customer", 90)]
    assert listing(api, tenant, limit=1) == [(ana, "Ana", "lead", 40)]
    assert listing(api, other) == [(cid, "Cid", "lead", 0)]

    # The Customer rewrites its directory row whenever its profile changes.
    api.call(f"Customer/{ana}", "update_profile", status="prospect", lead_score=65, name="Ana Reis")
    assert listing(api, tenant, status="prospect") == [(ana, "Ana Reis", "prospect", 65)]
    assert api.call(tenant, "customer_counts") == {"lead": 0, "prospect": 1, "customer": 1, "churned": 0}

    # Bad input changes nothing: not the Customer, not its row, not the tenant's links.
    error = failure(lambda: api.call(f"Customer/{ana}", "update_profile", lead_score=101))
    assert (error.status, error.error["code"]) == (400, "invalid_profile")
    error = failure(lambda: api.call(tenant, "add_customer", customer_id=f"dan-{run_id}", name="Dan", email="nope"))
    assert (error.status, error.error["code"]) == (400, "invalid_profile")
    error = failure(lambda: api.call(other, "add_customer", customer_id=ana, name="Ana again"))
    assert (error.status, error.error["code"]) == (409, "customer_exists")
    assert failure(lambda: api.call(tenant, "list_customers", status="vip")).status == 422
    assert failure(lambda: api.call(tenant, "list_customers", limit=0)).error["code"] == "invalid_argument"
    assert listing(api, tenant) == [(ana, "Ana Reis", "prospect", 65), (bea, "Bea", "customer", 90)]
    assert listing(api, other) == [(cid, "Cid", "lead", 0)]
    assert api.call(tenant, "get_settings")["customers"] == 2
    error = failure(lambda: api.call(f"Customer/dan-{run_id}", "get_profile"))
    assert (error.status, error.error["code"]) == (404, "customer_not_found")


def test_a_tenant_refuses_customers_beyond_its_limit(api, run_id):
    tenant = f"Tenant/small-{run_id}"
    api.call(tenant, "add_customer", customer_id=f"one-{run_id}", name="One")
    api.call(tenant, "add_customer", customer_id=f"two-{run_id}", name="Two")
    error = failure(lambda: api.call(tenant, "update_settings", max_customers=1))
    assert (error.status, error.error["code"]) == (400, "invalid_settings")
    assert api.call(tenant, "update_settings", max_customers=2)["max_customers"] == 2

    error = failure(lambda: api.call(tenant, "add_customer", customer_id=f"three-{run_id}", name="Three"))
    assert (error.status, error.error["code"]) == (409, "plan_limit")
    assert [c["name"] for c in api.call(tenant, "list_customers")] == ["One", "Two"]


def test_every_context_update_is_a_new_version_with_its_author(api, run_id):
    customer = f"Customer/ctx-{run_id}"
    api.call(customer, "create", tenant=f"t-{run_id}", name="Rui", company="Rui Pilates", title="Owner")
    assert api.call(customer, "get_context")["version"] == 1

    context = api.call(customer, "add_key_fact", fact="Has two studios")
    assert context["version"] == 2 and context["updated_by"] == "manual"
    assert api.call(customer, "add_key_fact", fact="Has two studios")["version"] == 2  # duplicate: no new version
    context = api.call(
        customer,
        "update_context",
        changes={"goals": ["Open a third studio"], "risk_level": "medium"},
        updated_by="sales:marta",
    )
    assert (context["version"], context["updated_by"], context["goals"]) == (3, "sales:marta", ["Open a third studio"])
    api.call(customer, "add_pain_point", issue="Booking app is slow", severity="high")
    api.call(customer, "add_pain_point", issue="Invoices arrive late")
    context = api.call(customer, "resolve_pain_point", index=1)
    assert [(p["issue"], p["resolved"]) for p in context["pain_points"]] == [
        ("Booking app is slow", False),
        ("Invoices arrive late", True),
    ]
    context = api.call(customer, "set_preference", key="channel", value="whatsapp")
    assert (context["version"], context["preferences"]) == (7, {"channel": "whatsapp"})

    history = api.call(customer, "context_history", limit=3)
    assert [(v["version"], v["updated_by"]) for v in history] == [(7, "manual"), (6, "manual"), (5, "manual")]
    assert history[0]["changes"] == {"preferences": {"channel": "whatsapp"}}
    first = api.call(customer, "context_history")[-1]
    assert (first["version"], first["updated_by"], first["changes"]) == (1, "create", {})

    # Bad input: refused with a clear code, and no new version.
    for changes in ({"risk_level": "extreme"}, {"colour": "blue"}, {"key_facts": []}, {}, {"lifetime_value": -1}):
        error = failure(lambda changes=changes: api.call(customer, "update_context", changes=changes))
        assert (error.status, error.error["code"]) == (400, "invalid_context")
    error = failure(lambda: api.call(customer, "resolve_pain_point", index=1))
    assert (error.status, error.error["code"]) == (409, "already_resolved")
    assert failure(lambda: api.call(customer, "resolve_pain_point", index=9)).status == 404
    assert failure(lambda: api.call(customer, "add_pain_point", issue="x", severity="huge")).status == 422
    assert api.call(customer, "get_context")["version"] == 7

    text = api.call(customer, "get_context_for_ai")
    assert text["version"] == 7
    for line in (
        "- Name: Rui",
        "- Company: Rui Pilates",
        "- Has two studios",
        "- [high] Booking app is slow",
        "- Open a third studio",
        "- Risk level: medium",
        "- Preferences: channel: whatsapp",
    ):
        assert line in text["context"]
    assert "Invoices arrive late" not in text["context"]  # resolved pain points are not injected


def test_interactions_update_the_context_and_enrichment_merges_instead_of_replacing(api, run_id):
    customer = f"Customer/enrich-{run_id}"
    api.call(customer, "create", tenant=f"t-{run_id}", name="Lia")
    api.call(customer, "add_key_fact", fact="Prefers mornings")
    api.call(customer, "update_context", changes={"goals": ["Grow online classes"]})

    said = "We are a studio of 12 teachers. Our booking system is too slow. We want to sell video courses."
    result = api.call(customer, "record_interaction", kind="email", content=said, sentiment="negative")
    context = api.call(customer, "get_context")
    assert (result["version"], context["updated_by"], context["sentiment_trend"]) == (4, "auto", "negative")
    assert context["last_interaction_summary"].startswith("inbound email on ")
    api.call(customer, "record_interaction", kind="email", content="Here is the course outline.", direction="outbound")

    enriched = api.call(customer, "enrich")
    assert enriched["version"] == 6 and {"key_facts", "pain_points", "goals"} <= set(enriched["applied"])
    context = api.call(customer, "get_context")
    assert context["updated_by"] == "ai_enrichment"
    assert [f["fact"] for f in context["key_facts"]] == ["Prefers mornings", "We are a studio of 12 teachers."]
    assert context["key_facts"][1]["source"] == "ai"
    assert context["goals"] == ["Grow online classes", "We want to sell video courses."]
    assert [p["issue"] for p in context["pain_points"]] == ["Our booking system is too slow."]
    assert "course outline" not in str(context["key_facts"])  # outbound messages are ours, not the customer's

    # The local model is deterministic: the same interactions add nothing new, so no new version.
    assert api.call(customer, "enrich") == {"applied": [], "ignored": [], "version": 6}

    api.call(customer, "update_context", changes={"auto_update_enabled": False})
    assert api.call(customer, "record_interaction", kind="call", content="Quick hello")["version"] == 7
    assert failure(lambda: api.call(customer, "record_interaction", kind="call", content=" ")).status == 400
    assert (
        failure(lambda: api.call(customer, "record_interaction", kind="sms", content="x", direction="up")).status == 422
    )


def test_customers_contexts_and_the_directory_survive_a_worker_restart(api, solo, run_id):
    tenant, customer = f"Tenant/durable-{run_id}", f"dur-{run_id}"
    api.call(tenant, "update_settings", plan="pro", max_customers=50)
    api.call(tenant, "add_customer", customer_id=customer, name="Durable Dora", lead_score=70)
    api.call(f"Customer/{customer}", "add_key_fact", fact="Signed in March")
    before = api.call(f"Customer/{customer}", "get_context_for_ai")

    solo.restart_workers()

    settings = api.call(tenant, "get_settings")
    assert (settings["plan"], settings["max_customers"], settings["customers"]) == ("pro", 50, 1)
    assert listing(api, tenant) == [(customer, "Durable Dora", "lead", 70)]
    assert api.call(f"Customer/{customer}", "get_context_for_ai") == before
    assert [v["version"] for v in api.call(f"Customer/{customer}", "context_history")] == [2, 1]
    error = failure(lambda: api.call(tenant, "add_customer", customer_id=customer, name="Again"))
    assert error.error["code"] == "customer_exists"
