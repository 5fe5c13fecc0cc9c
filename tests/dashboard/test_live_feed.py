"""The live call feed: calls reach the dashboard's WebSocket as they happen, only the tenant's own
members may listen, and a flood of calls never makes the proxy wait for the feed."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest
from django.contrib.auth.models import User
from django.test import Client
from mcp.shared.exceptions import MCPError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from dashboard.feed import PER_BATCH, FeedHub, FeedPublisher, sample
from gateway.models import Target, Tenant
from gateway.services import tenant_create, user_create
from tests.conftest import Gateway, issue_credential, mcp_client, run

PASSWORD = "a-long-enough-test-password-1"


def session_cookie(user: User) -> str:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def member_cookie(tenant: Tenant, name: str = "alice", role: str = "reviewer") -> str:
    return session_cookie(user_create(username=name, tenant=tenant, role=role, password=PASSWORD).user)


def feed_url(gateway: Gateway, tenant_id: int) -> str:
    return gateway.url.replace("http://", "ws://") + f"/dashboard/{tenant_id}/feed"


async def open_feed(
    gateway: Gateway, tenant_id: int, cookie: str, origin: str | None = None
) -> ClientConnection:
    headers = {"Cookie": cookie, "Origin": origin or gateway.url}
    socket = await connect(feed_url(gateway, tenant_id), additional_headers=headers, open_timeout=15)
    hello = orjson.loads(await asyncio.wait_for(socket.recv(), 15))
    assert hello == {"type": "subscribed"}
    return socket


async def refused_status(gateway: Gateway, tenant_id: int, cookie: str, origin: str | None = None) -> int:
    headers = {"Cookie": cookie, "Origin": origin or gateway.url}
    with pytest.raises(InvalidStatus) as refused:
        async with connect(feed_url(gateway, tenant_id), additional_headers=headers, open_timeout=15):
            pass
    return refused.value.response.status_code


def a_record(tenant_id: int, index: int, decision: str = "allowed") -> dict[str, Any]:
    """What the audit step hands the feed (``build_audit_record``'s keys that the feed reads)."""
    return {
        "created_at": "2026-01-01T00:00:00+00:00",
        "tenant_id": tenant_id,
        "target_slug": "docs",
        "credential_name": "ci-agent",
        "route": "POST /tools/search",
        "jsonrpc_method": "tools/call",
        "tool": f"search-{index}",
        "decision": decision,
        "status_code": 200 if decision == "allowed" else 403,
        "latency_ms": 3.5,
        "reason": "",
    }


async def receive_calls(socket: ClientConnection, until: int, seconds: float = 30) -> list[dict[str, Any]]:
    """Feed messages until they account for ``until`` calls (shown plus 'more'), or the time is up."""
    messages: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    while sum(len(m["calls"]) + m["more"] for m in messages) < until and time.monotonic() < deadline:
        try:
            raw = await asyncio.wait_for(socket.recv(), max(deadline - time.monotonic(), 0.01))
        except TimeoutError:
            break
        messages.append(orjson.loads(raw))
    return messages


def test_a_call_through_the_proxy_appears_in_the_live_feed(gateway: Gateway, target: Target) -> None:
    # given a reviewer watching the tenant's feed
    issued = issue_credential(target.tenant, target, "POST /tools/search", name="ci-agent")
    cookie = member_cookie(target.tenant)

    async def scenario() -> list[dict[str, Any]]:
        socket = await open_feed(gateway, target.tenant_id, cookie)
        async with socket:
            # when an agent calls a tool, and is refused another
            async with mcp_client(gateway.proxy_url("docs"), issued.token) as client:
                await client.call_tool("search", {"query": "gateways"})
                with pytest.raises(MCPError):
                    await client.call_tool("delete_all", {})
            deadline = time.monotonic() + 30
            calls: list[dict[str, Any]] = []
            while time.monotonic() < deadline and not {"search", "delete_all"} <= {c["tool"] for c in calls}:
                message = orjson.loads(await asyncio.wait_for(socket.recv(), 30))
                calls += message["calls"]
            return calls

    calls = run(scenario())

    # then both arrive, with who, what and the decision, and nothing secret
    by_tool = {call["tool"]: call for call in calls}
    assert by_tool["search"]["decision"] == "allowed"
    assert by_tool["search"]["credential"] == "ci-agent"
    assert by_tool["search"]["target"] == "docs"
    assert by_tool["delete_all"]["decision"] == "denied"
    assert "no rule allows POST /tools/delete_all" in by_tool["delete_all"]["reason"]
    shown = orjson.dumps(calls).decode()
    assert issued.token not in shown and issued.credential.prefix not in shown


def test_another_tenants_member_cannot_open_the_feed(gateway: Gateway, target: Target) -> None:
    other = tenant_create(name="globex")
    cookie = member_cookie(other, role="admin")

    assert run(refused_status(gateway, target.tenant_id, cookie)) == 403


def test_a_visitor_without_a_session_cannot_open_the_feed(gateway: Gateway, target: Target) -> None:
    assert run(refused_status(gateway, target.tenant_id, "sessionid=not-a-session")) == 403


def test_a_page_of_another_site_cannot_open_the_feed_with_the_admins_cookie(
    gateway: Gateway, target: Target
) -> None:
    cookie = session_cookie(User.objects.create_superuser("root", password=PASSWORD))

    assert run(refused_status(gateway, target.tenant_id, cookie, origin="https://evil.example")) == 403


def test_a_superuser_may_watch_any_tenant_but_not_one_that_does_not_exist(
    gateway: Gateway, target: Target
) -> None:
    cookie = session_cookie(User.objects.create_superuser("root", password=PASSWORD))

    async def scenario() -> None:
        socket = await open_feed(gateway, target.tenant_id, cookie)
        await socket.close()

    run(scenario())
    assert run(refused_status(gateway, 999_999, cookie)) == 403


def test_a_flood_of_calls_never_waits_on_the_feed_and_reaches_it_in_batches(
    gateway: Gateway, target: Target
) -> None:
    # given a dashboard listening while the proxy hands over 1,200 calls per second for 3 seconds
    cookie = member_cookie(target.tenant)
    rate, seconds = 1200, 3.0
    total = int(rate * seconds)
    tenant_id = target.tenant_id

    async def flood() -> tuple[int, float, dict[str, int]]:
        from gateway.proxy.runtime import get_runtime

        feed = get_runtime().feed
        pushed, spent, started = 0, 0.0, time.perf_counter()
        while pushed < total:
            # Catch up after a late wake-up: the rate holds on average however busy the loop is.
            due = min(total, int(rate * (time.perf_counter() - started)) + 1)
            began = time.perf_counter()
            while pushed < due:
                feed.offer(a_record(tenant_id, pushed, "denied" if pushed % 100 == 0 else "allowed"))
                pushed += 1
            spent += time.perf_counter() - began
            await asyncio.sleep(0.005)
        return pushed, spent, feed.status()

    async def scenario() -> tuple[int, float, dict[str, int], list[dict[str, Any]]]:
        socket = await open_feed(gateway, tenant_id, cookie)
        async with socket:
            listening = asyncio.create_task(receive_calls(socket, until=total))
            pushed, spent, status = await asyncio.wrap_future(
                asyncio.run_coroutine_threadsafe(flood(), gateway.server.loop)
            )
            return pushed, spent, status, await listening

    pushed, spent, status, messages = run(scenario())

    # then handing a call over is a list append (bounded, nothing dropped at this rate) ...
    assert pushed == total
    assert spent / pushed < 0.0005, f"{spent / pushed * 1e6:.0f} µs per call handed to the feed"
    assert status["dropped"] == 0 and status["offered"] >= pushed
    # ... and the dashboard got every call, as batches of at most PER_BATCH shown plus "N more"
    assert sum(len(m["calls"]) + m["more"] for m in messages) == pushed
    assert len(messages) >= 4
    assert all(len(m["calls"]) <= PER_BATCH for m in messages)
    assert any(m["more"] > 0 for m in messages)
    # denials are never the ones sampled out
    denied = sum(1 for m in messages for c in m["calls"] if c["decision"] == "denied")
    assert denied == len(range(0, pushed, 100))


def test_past_its_capacity_the_feed_drops_and_counts_calls_instead_of_growing() -> None:
    async def scenario() -> tuple[FeedPublisher, list[bytes]]:
        hub = FeedHub()
        publisher = FeedPublisher(capacity=100, hub=hub)
        queue = hub.subscribe(7)
        for index in range(1000):
            publisher.offer(a_record(7, index))
        await publisher.publish_waiting()
        return publisher, [queue.get_nowait() for _ in range(queue.qsize())]

    publisher, messages = asyncio.run(scenario())

    assert publisher.status()["dropped"] == 900
    assert publisher.status()["waiting"] == 0
    [message] = [orjson.loads(m) for m in messages]
    assert len(message["calls"]) == PER_BATCH and message["more"] == 100 - PER_BATCH


def test_each_tenant_hears_only_its_own_calls() -> None:
    async def scenario() -> tuple[list[bytes], list[bytes]]:
        hub = FeedHub()
        publisher = FeedPublisher(hub=hub)
        acme, globex = hub.subscribe(1), hub.subscribe(2)
        publisher.offer(a_record(1, 0))
        publisher.offer(a_record(1, 1))
        publisher.offer(a_record(2, 2))
        publisher.offer({**a_record(1, 3), "tenant_id": None})  # no tenant: nobody's call to watch
        await publisher.publish_waiting()
        return [acme.get_nowait() for _ in range(acme.qsize())], [
            globex.get_nowait() for _ in range(globex.qsize())
        ]

    acme, globex = asyncio.run(scenario())

    assert [c["tool"] for c in orjson.loads(acme[0])["calls"]] == ["search-0", "search-1"]
    assert [c["tool"] for c in orjson.loads(globex[0])["calls"]] == ["search-2"]


def test_sampling_keeps_every_denial_and_spreads_the_rest() -> None:
    records = [a_record(1, i, "denied" if i in (5, 95) else "allowed") for i in range(100)]

    kept = sample(records, 10)

    assert len(kept) == 10
    assert [r["tool"] for r in kept if r["decision"] == "denied"] == ["search-5", "search-95"]
    assert kept == sorted(kept, key=lambda r: int(r["tool"].split("-")[1]))


def test_protocol_plumbing_is_marked_so_the_page_can_hide_it() -> None:
    from dashboard.feed import summarise

    initialize = {**a_record(1, 0), "tool": "", "jsonrpc_method": "initialize"}
    stream = {**a_record(1, 0), "tool": "", "jsonrpc_method": "", "route": "GET /"}
    reading = {**a_record(1, 0), "tool": "", "jsonrpc_method": "resources/read"}
    refused = {**initialize, "decision": "denied"}

    assert summarise(initialize)["plumbing"] and summarise(stream)["plumbing"]
    assert not summarise(reading)["plumbing"]
    assert not summarise(a_record(1, 0))["plumbing"]
    assert not summarise(refused)["plumbing"]


@pytest.mark.parametrize("change", ["log out", "lose the tenant"])
def test_an_open_feed_closes_once_its_user_logs_out_or_loses_the_tenant(
    gateway: Gateway, target: Target, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    from django.contrib.sessions.models import Session
    from django.db import connections
    from websockets.exceptions import ConnectionClosed

    from gateway.models import TenantMembership

    monkeypatch.setattr("dashboard.consumers.RECHECK_SECONDS", 0.2)
    cookie = member_cookie(target.tenant)

    def forget() -> None:  # on a thread of its own, whose connection is closed after
        (Session if change == "log out" else TenantMembership).objects.all().delete()
        connections.close_all()

    async def scenario() -> int | None:
        socket = await open_feed(gateway, target.tenant_id, cookie)
        await asyncio.to_thread(forget)
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), 20)
        return closed.value.rcvd.code if closed.value.rcvd else None

    assert run(scenario()) == 4403
