"""Acceptance: meters enforced by the real gateway (uvicorn) in front of a real MCP server."""

from __future__ import annotations

import httpx2
import orjson
import pytest
from mcp.shared.exceptions import MCPError

from audit.models import AuditEvent
from metering.models import Meter
from metering.services import meter_create
from tests.conftest import issue_credential, mcp_client, run
from tests.metering.conftest import JSONRPC_HEADERS, post_call, use_clock
from tests.queries import count_request_queries

TOKENS = "$.result.structuredContent.usage.total_tokens"


def audit_events(gateway) -> list[AuditEvent]:
    gateway.flush_audit()
    return list(AuditEvent.objects.filter(kind="call").order_by("created_at", "id"))


def test_sixth_call_in_a_minute_is_refused_with_429_naming_the_meter(gateway, tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/*")
    meter = meter_create(
        tenant=tenant,
        credential=issued.credential,
        kind="request_count",
        window="minute",
        limit=5,
        route="POST /tools/*",
    )
    url = gateway.proxy_url("docs")

    passed = [post_call(url, issued.token, request_id=n) for n in range(1, 6)]
    refused = post_call(url, issued.token, request_id=6)

    assert [r.status_code for r in passed] == [200] * 5
    assert passed[0].headers["RateLimit-Policy"] == f'"m{meter.pk}";q=5;w=60'
    assert [r.headers["RateLimit"].split(";")[1] for r in passed] == ["r=4", "r=3", "r=2", "r=1", "r=0"]
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 61
    assert refused.headers["RateLimit-Policy"] == f'"m{meter.pk}";q=5;w=60'
    assert refused.headers["RateLimit"] == f'"m{meter.pk}";r=0;t={refused.headers["Retry-After"]}'
    body = refused.json()
    assert body["id"] == 6 and body["error"]["code"] == -32029
    assert f"meter m{meter.pk}" in body["error"]["message"]
    data = body["error"]["data"]["meter"]
    assert {k: data[k] for k in ("id", "kind", "scope", "scope_id", "window", "limit", "used")} == {
        "id": meter.pk,
        "kind": "request_count",
        "scope": "credential",
        "scope_id": issued.credential.pk,
        "window": "minute",
        "limit": 5,
        "used": 5,
    }
    assert data["retry_after"] == int(refused.headers["Retry-After"]) and data["reset_at"].endswith("+00:00")

    events = audit_events(gateway)
    assert [(e.decision, e.status_code) for e in events] == [("allowed", 200)] * 5 + [("denied", 429)]
    assert f"meter m{meter.pk}" in events[-1].reason


def test_another_credential_of_the_tenant_is_unaffected_unless_a_tenant_meter_applies(
    gateway, tenant, target
):
    first = issue_credential(tenant, target, "POST /tools/search", name="first")
    second = issue_credential(tenant, target, "POST /tools/search", name="second")
    meter_create(tenant=tenant, credential=first.credential, kind="request_count", window="minute", limit=1)
    url = gateway.proxy_url("docs")
    assert post_call(url, first.token).status_code == 200
    assert post_call(url, first.token).status_code == 429
    assert [post_call(url, second.token).status_code for _ in range(3)] == [200] * 3

    tenant_meter = meter_create(tenant=tenant, kind="request_count", window="hour", limit=2)
    assert [post_call(url, second.token).status_code for _ in range(3)] == [200, 200, 429]
    refused = post_call(url, first.token)  # refused by its own meter or the tenant's, both exhausted
    assert refused.status_code == 429
    assert post_call(url, second.token).json()["error"]["data"]["meter"]["id"] == tenant_meter.pk


def test_tokens_read_from_responses_stop_the_call_after_the_one_that_crosses_the_limit(
    gateway, tenant, target
):
    issued = issue_credential(tenant, target, "POST /tools/search")
    meter = meter_create(
        tenant=tenant, target=target, kind="response_value", window="day", limit=1000, value_paths=[TOKENS]
    )

    async def agent() -> tuple[list[bool], MCPError]:
        async with mcp_client(gateway.proxy_url("docs"), issued.token) as client:
            results = [await client.call_tool("search", {"query": str(n)}) for n in range(3)]
            with pytest.raises(MCPError) as caught:
                await client.call_tool("search", {"query": "4"})
            return [not r.is_error for r in results], caught.value

    passed, error = run(agent())
    assert passed == [True, True, True]  # 400, 800, then 1200: the third crosses 1000 and completes
    assert f"meter m{meter.pk}" in error.message
    assert error.data["meter"]["used"] == 1200 and error.data["meter"]["kind"] == "response_value"
    calls = [e for e in audit_events(gateway) if e.tool == "search"]
    assert [e.response_values for e in calls] == [{TOKENS: 400}] * 3 + [{}]
    assert calls[-1].status_code == 429 and calls[-1].decision == "denied"


def legacy_session(url: str, token: str) -> tuple[httpx2.Client, dict[str, str]]:
    """A 2025-style session, whose tools/call answers come as an event stream."""
    http = httpx2.Client(timeout=10, headers={**JSONRPC_HEADERS, "Authorization": f"Bearer {token}"})
    init = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        },
    }
    response = http.post(url, content=orjson.dumps(init))
    session = {"Mcp-Session-Id": response.headers["mcp-session-id"], "MCP-Protocol-Version": "2025-06-18"}
    http.post(url, content=b'{"jsonrpc":"2.0","method":"notifications/initialized"}', headers=session)
    return http, session


def test_values_inside_event_stream_responses_count(gateway, tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/search")
    meter_create(
        tenant=tenant, target=target, kind="response_value", window="day", limit=400, value_paths=[TOKENS]
    )
    url = gateway.proxy_url("docs")
    http, session = legacy_session(url, issued.token)
    body = orjson.dumps(
        {
            "jsonrpc": "2.0",
            "id": 5,
            "method": "tools/call",
            "params": {"name": "search", "arguments": {"query": "q"}},
        }
    )
    try:
        first = http.post(url, content=body, headers=session)
        second = http.post(url, content=body, headers=session)
    finally:
        http.close()
    assert first.headers["content-type"].startswith("text/event-stream")
    assert '"total_tokens":400' in first.text.replace(" ", "")
    assert second.status_code == 429 and second.json()["error"]["data"]["meter"]["used"] == 400
    [streamed] = [e for e in audit_events(gateway) if e.status_code == 200 and e.tool == "search"]
    assert streamed.response_values == {TOKENS: 400}


def test_a_sliding_minute_meter_frees_capacity_as_time_moves_on(gateway, tenant, target, clock):
    issued = issue_credential(tenant, target, "POST /tools/search")
    meter_create(
        tenant=tenant,
        credential=issued.credential,
        kind="response_value",
        window="minute",
        limit=800,
        value_paths=[TOKENS],
    )
    use_clock(gateway, clock)
    url = gateway.proxy_url("docs")
    statuses = []
    for advance in (0, 30, 1, 29, 1.5):  # t = 0, 30, 31, 60, 61.5
        clock.advance(advance)
        statuses.append(post_call(url, issued.token).status_code)
    # 400 at t=0 and 400 at t=30 reach 800: refused at t=31 and t=60, the t=0 tokens are gone by t=61.
    assert statuses == [200, 200, 429, 429, 200]


def test_a_missing_value_counts_zero_and_the_audit_event_says_so(gateway, tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/search")
    meter = meter_create(
        tenant=tenant,
        target=target,
        kind="response_value",
        window="day",
        limit=10,
        value_paths=["$.result._meta.cost"],
    )
    assert post_call(gateway.proxy_url("docs"), issued.token, request_id=3).status_code == 200
    [event] = audit_events(gateway)
    assert event.meter_notes == [
        f"meter m{meter.pk}: value path $.result._meta.cost missing in the response to id 3: counted 0"
    ]
    assert event.response_values == {"$.result._meta.cost": 0}


def test_protocol_plumbing_is_never_metered(gateway, tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/search")
    meter_create(tenant=tenant, credential=issued.credential, kind="request_count", window="minute", limit=1)

    async def agent() -> list[int]:
        async with mcp_client(gateway.proxy_url("docs"), issued.token) as client:
            return [len((await client.list_tools()).tools) for _ in range(3)]

    assert run(agent()) == [1, 1, 1]


def test_a_changed_meter_applies_from_the_next_call(gateway, tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/search")
    meter = meter_create(
        tenant=tenant, credential=issued.credential, kind="request_count", window="minute", limit=1
    )
    url = gateway.proxy_url("docs")
    assert [post_call(url, issued.token).status_code for _ in range(2)] == [200, 429]
    meter.limit = 3
    meter.save()
    assert [post_call(url, issued.token).status_code for _ in range(3)] == [200, 200, 429]
    Meter.objects.filter(pk=meter.pk).delete()
    assert post_call(url, issued.token).status_code == 200


def test_a_warm_metered_call_makes_zero_database_queries(gateway, tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/search")
    meter_create(
        tenant=tenant, credential=issued.credential, kind="request_count", window="minute", limit=100
    )
    meter_create(
        tenant=tenant, target=target, kind="response_value", window="day", limit=10**6, value_paths=[TOKENS]
    )
    url = gateway.proxy_url("docs")
    assert post_call(url, issued.token).status_code == 200  # warms the policy and meter caches

    with count_request_queries() as queries:
        response = post_call(url, issued.token)
    assert response.status_code == 200 and "RateLimit" in response.headers
    assert queries.statements == []


def test_a_batch_counts_each_metered_call_and_is_refused_whole(gateway, tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/search")
    meter_create(tenant=tenant, credential=issued.credential, kind="request_count", window="minute", limit=3)
    calls = [
        {
            "jsonrpc": "2.0",
            "id": n,
            "method": "tools/call",
            "params": {"name": "search", "arguments": {"query": "q"}},
        }
        for n in (1, 2)
    ]
    headers = {**JSONRPC_HEADERS, "Authorization": f"Bearer {issued.token}"}
    url = gateway.proxy_url("docs")
    first = httpx2.post(url, content=orjson.dumps(calls), headers=headers, timeout=10)
    second = httpx2.post(url, content=orjson.dumps(calls), headers=headers, timeout=10)
    assert first.status_code != 429 and ";r=1;" in first.headers["RateLimit"]  # forwarded: 2 of 3 used
    assert second.status_code == 429  # two calls need two units; one is left
    assert second.json()["error"]["data"]["meter"]["used"] == 2
    assert post_call(url, issued.token).status_code == 200  # the one left is still there


def test_a_cold_metered_call_while_the_database_is_down_gets_503_not_500(
    gateway, tenant, target, monkeypatch
):
    import httpx2
    from django.db import OperationalError

    import metering.cache
    from metering.services import meter_create
    from tests.conftest import issue_credential

    issued = issue_credential(tenant, target, "POST /tools/search")
    meter_create(tenant=tenant, credential=issued.credential, kind="request_count", window="minute", limit=5)
    url = gateway.proxy_url("docs")
    body = (
        b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "search", "arguments": {}}}'
    )
    headers = {"Authorization": f"Bearer {issued.token}", "Content-Type": "application/json"}

    def database_down(**kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(metering.cache, "compiled_meters_for_call", database_down)
    response = httpx2.post(url, content=body, headers=headers, timeout=10)
    assert response.status_code == 503
    assert "configuration database is unavailable" in response.json()["error"]["message"]
