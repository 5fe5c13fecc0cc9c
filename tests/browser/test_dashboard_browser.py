"""A security admin in a real browser (Debian's Chromium driven by Playwright): logs in on the admin's
login page, adds a target and a credential, sees the token once, and watches a call made with it
arrive in the dashboard's live feed; a refused call then shows on the dashboard with its reason.

The browser runs headless from /usr/bin/chromium (``.ci/run`` installs the Debian package; Playwright's
own browser download is never used). Screenshots of each step are kept in ``var/test-artifacts/browser/``.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import shutil
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connections
from mcp.shared.exceptions import MCPError

from gateway.models import Credential, Target, Tenant
from metering.services import meter_create
from tests.conftest import Gateway, Upstream, mcp_client, require_service
from tests.dashboard.helpers import call_event, store

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTEFACTS = Path(settings.BASE_DIR) / "var" / "test-artifacts" / "browser"
PASSWORD = "a-long-enough-test-password-1"
TOKEN = re.compile(r"mgw_[a-z0-9]{10}_[A-Za-z0-9_-]+")
WAIT_MS = 30_000


@pytest.fixture
def browser_page(transactional_db: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A fresh page of a headless Chromium (1280x900).

    Playwright's sync API drives its own event loop on this thread, which Django takes for an async
    context; the test's ORM calls are plain synchronous calls all the same (Playwright's documented
    setting for Django tests). Torn down before the test database is flushed.
    """
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    if shutil.which(CHROMIUM) is None:
        require_service("chromium", f"{CHROMIUM} is not installed (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require_service("playwright", "the playwright package is not installed")
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(WAIT_MS)
        try:
            yield context.new_page()
        finally:
            # The ORM calls made while Playwright's loop ran got a connection of their own (Django
            # keeps connections per context); close it, or it outlives the test database.
            connections.close_all()
            context.close()
            browser.close()


def snapshot(page: Any, name: str) -> Path:
    path = ARTEFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def call_in_thread(url: str, token: str, tool: str) -> str:
    """Call ``tool`` as an agent with the official MCP client, on a thread of its own (the browser's
    driver holds this thread's event loop); the outcome as text."""
    outcome: list[str] = []

    async def agent() -> None:
        async with mcp_client(url, token) as client:
            try:
                result = await client.call_tool(tool, {"query": "gateways"} if tool == "search" else {})
                outcome.append("error" if result.is_error else "ok")
            except MCPError as exc:
                outcome.append(f"refused: {exc}")

    thread = threading.Thread(target=lambda: asyncio.run(agent()))
    thread.start()
    thread.join(60)
    assert outcome, f"the agent's call of {tool} did not finish"
    return outcome[0]


def history(tenant: Tenant, target: Target) -> None:
    """A day of earlier calls (busier in the day than at night), so the charts have more to draw
    than the test's own calls."""
    rng = random.Random(10)
    tools = ["search", "search", "search", "fetch_page", "summarise", "create_ticket"]
    agents = ["ci-pipeline", "support-bot", "nightly-sync"]
    events = []
    for minute in range(0, 24 * 60, 4):
        busy = 1 + math.sin(minute / (24 * 60) * 2 * math.pi) + rng.random()
        for _ in range(int(busy * 2)):
            roll = rng.random()
            limited, denied = roll < 0.02, 0.02 <= roll < 0.07
            tool = "delete_all" if denied else rng.choice(tools)
            events.append(
                call_event(
                    target,
                    ago=timedelta(minutes=minute + rng.random() * 4),
                    tool=tool,
                    credential_name=rng.choice(agents),
                    decision="denied" if denied or limited else "allowed",
                    status_code=429 if limited else 403 if denied else 200,
                    reason="meter m1 exhausted"
                    if limited
                    else f"no rule allows POST /tools/{tool}"
                    if denied
                    else "",
                    latency_ms=rng.lognormvariate(3.2, 0.45),
                    protections={"filters": [], "redactions": [{"policy": 1}]} if rng.random() < 0.04 else {},
                )
            )
    store(*events)


# The static files (served by the gateway, as in production) are file responses: settings.py silences
# Django's warning about them, which pytest's own warning filters bring back.
@pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators")
def test_admin_adds_a_credential_and_watches_its_calls_on_the_dashboard(
    browser_page: Any, gateway: Gateway, upstream: Upstream, transactional_db: None
) -> None:
    page = browser_page
    User.objects.create_superuser("security-admin", password=PASSWORD)
    tenant = Tenant.objects.create(name="acme")

    # log in on the admin's login page
    page.goto(f"{gateway.url}/admin/login/?next=/admin/")
    page.fill("#id_username", "security-admin")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
    snapshot(page, "1-admin")

    # add a target
    page.goto(f"{gateway.url}/admin/gateway/target/add/")
    page.select_option("#id_tenant", str(tenant.pk))
    page.fill("#id_slug", "docs")
    page.fill("#id_upstream_url", upstream.url)
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    target = Target.objects.get(slug="docs")

    # add a credential that may call the search tool, and see its token once
    page.goto(f"{gateway.url}/admin/gateway/credential/add/")
    page.select_option("#id_tenant", str(tenant.pk))
    page.fill("#id_name", "ci-agent")
    page.select_option("#id_targets", str(target.pk))
    page.fill("#id_rules-0-method", "POST")
    page.fill("#id_rules-0-path", "/tools/search")
    page.click("input[name=_save]")
    message = page.inner_text(".messagelist .success")
    snapshot(page, "2-token-shown-once")
    assert "will not be shown again" in message
    token = TOKEN.search(message).group()  # type: ignore[union-attr]
    credential = Credential.objects.get(name="ci-agent")
    page.goto(f"{gateway.url}/admin/gateway/credential/{credential.pk}/change/")
    assert token not in page.content()

    # open the tenant's dashboard: the live feed connects
    history(tenant, target)
    meter_create(tenant=tenant, credential=credential, kind="request_count", window="hour", limit=8)
    meter_create(tenant=tenant, kind="request_count", window="minute", limit=4)
    page.goto(f"{gateway.url}/dashboard/")
    page.wait_for_selector("[data-feed-status].live")
    assert page.url.endswith(f"/dashboard/{tenant.pk}/")

    # an agent's call arrives in the live feed as it happens
    assert call_in_thread(gateway.proxy_url("docs"), token, "search") == "ok"
    row = page.wait_for_selector("[data-feed-rows] tr:has-text('search')")
    assert "allowed" in row.inner_text() and "ci-agent" in row.inner_text()

    # a refused call arrives too, and shows on the dashboard with its reason
    outcome = call_in_thread(gateway.proxy_url("docs"), token, "delete_all")
    assert outcome.startswith("refused: Denied by policy: no rule allows POST /tools/delete_all")
    page.wait_for_selector("[data-feed-rows] tr:has-text('delete_all') .decision.denied")
    snapshot(page, "3-live-feed")
    gateway.flush_audit()
    page.goto(f"{gateway.url}/dashboard/{tenant.pk}/?period=24h")
    page.wait_for_selector("[data-feed-status].live")
    denial = page.wait_for_selector("#denials tbody tr:has-text('delete_all')")
    assert "no rule allows POST /tools/delete_all" in denial.inner_text()
    assert "ci-agent" in denial.inner_text()
    for tool in ("search", "search", "delete_all"):
        call_in_thread(gateway.proxy_url("docs"), token, tool)
    page.wait_for_function(
        "document.querySelectorAll('[data-feed-rows] tr:not(.placeholder):not(.plumbing)').length >= 3"
    )
    snapshot(page, "4-dashboard")

    # the denial links to its audit event in the admin
    denial.query_selector("a").click()
    page.wait_for_selector("#content h1")
    assert "/admin/audit/auditevent/" in page.url
