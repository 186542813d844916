"""The chat page (examples/pages/chat.html) in two real browser tabs: Playwright driving the system's chromium.

Two people chat through the Conversation example; every worker is killed (kill -9) between two of
their messages, and the chat goes on without either tab reconnecting by hand.
"""

from __future__ import annotations

BOUND_MS = 30_000  # a bound on waiting, not a timing


def test_two_tabs_chat_through_a_conversation_across_kill_9_of_every_worker(solo, chromium, run_id):
    from playwright.sync_api import expect, sync_playwright

    page_url = f"{solo.url}/pages/chat.html?room=page-{run_id}"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            alice, bob = browser.new_page(), browser.new_page()
            alice.goto(f"{page_url}&user=alice")
            bob.goto(f"{page_url}&user=bob")
            for tab in (alice, bob):
                expect(tab.locator("#status")).to_have_text("connected", timeout=BOUND_MS)
            expect(alice.locator("#presence")).to_have_text("here: alice, bob", timeout=BOUND_MS)

            alice.fill("#text", "hello bob")
            alice.press("#text", "Enter")
            expect(bob.locator("#messages li")).to_have_text(["alice: hello bob"], timeout=BOUND_MS)

            solo.restart_workers()  # kill -9: the sockets live in the API process and stay open

            bob.fill("#text", "still here")
            bob.press("#text", "Enter")
            both = ["alice: hello bob", "bob: still here"]
            expect(alice.locator("#messages li")).to_have_text(both, timeout=BOUND_MS)
            expect(bob.locator("#messages li")).to_have_text(both, timeout=BOUND_MS)
        finally:
            browser.close()
