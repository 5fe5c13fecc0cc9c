"""The hot path works from the compiled, cached policy: no database query on a warm call."""

from __future__ import annotations

import asyncio
import time

import httpx2
import orjson

from gateway.models import Credential
from policies.invalidation import publish_invalidation
from policies.models import PolicyVersion
from tests.conftest import issue_credential
from tests.queries import count_request_queries

HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def _list_tools(url: str, token: str) -> httpx2.Response:
    # The modern (2026-07-28) protocol is stateless: one POST is one whole call.
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    body = orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": meta}})
    headers = {**HEADERS, "Authorization": f"Bearer {token}", "MCP-Protocol-Version": "2026-07-28"}
    return httpx2.post(url, content=body, headers={**headers, "Mcp-Method": "tools/list"}, timeout=10)


def _call_search(url: str, token: str, arguments: dict | None = None) -> httpx2.Response:
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    params = {"name": "search", "arguments": arguments or {"query": "gateways"}, "_meta": meta}
    body = orjson.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": params})
    headers = {
        **HEADERS,
        "Authorization": f"Bearer {token}",
        "MCP-Protocol-Version": "2026-07-28",
        "Mcp-Method": "tools/call",
        "Mcp-Name": "search",
    }
    return httpx2.post(url, content=body, headers=headers, timeout=10)


def stop_background_invalidation(gateway) -> None:
    """Stop the gateway's version poll and pub/sub listener, so only the test empties the cache.

    The test's own writes (tenant, target, credential) reach the gateway a second time through
    them: the poll sees the new version up to a second later, and Redis echoes each change back.
    On a loaded machine those late invalidations land mid-burst and rightly cause a reload.
    """
    names = {"policy-version-poll", "policy-listen"}

    async def stop() -> None:
        from gateway.proxy.runtime import get_runtime

        get_runtime()  # started, so its tasks exist
        tasks = [task for task in asyncio.all_tasks() if task.get_name() in names]
        assert tasks, "the gateway runs no invalidation task to stop"
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    gateway.server.call(stop())


def test_warm_proxied_call_makes_zero_database_queries(gateway, tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/search")
    url = gateway.proxy_url("docs")
    stop_background_invalidation(gateway)
    # The first listing pins the upstream's tools, a configuration change; the second loads the pins.
    for _ in range(2):
        assert _list_tools(url, issued.token).status_code == 200

    with count_request_queries() as queries:
        listing = _list_tools(url, issued.token)
        call = _call_search(url, issued.token)  # validated against the pinned input schema
    assert listing.status_code == 200 and call.status_code == 200
    assert b"result for gateways" in call.content
    assert queries.statements == []


def test_a_warm_call_with_invalid_arguments_is_refused_from_memory(gateway, tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/search")
    url = gateway.proxy_url("docs")
    stop_background_invalidation(gateway)
    for _ in range(2):
        assert _list_tools(url, issued.token).status_code == 200

    with count_request_queries() as queries:
        response = _call_search(url, issued.token, arguments={"query": 42})
    assert response.json()["error"]["code"] == -32602
    assert queries.statements == []


def test_cold_call_loads_the_policy_with_a_bounded_number_of_queries(gateway, tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/search")
    with count_request_queries() as queries:
        assert _list_tools(gateway.proxy_url("docs"), issued.token).status_code == 200
    # target and its pinned tools, token prefixes, credential with its rules and targets, its filters and
    # redaction policies, meters
    assert 0 < len(queries.statements) <= 9


def test_revocation_by_another_process_takes_effect_within_a_second(gateway, tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/search")
    url = gateway.proxy_url("docs")
    assert _list_tools(url, issued.token).status_code == 200

    # Another process revokes: the row changes, the version is bumped and (with Redis) published,
    # with no signal in this process.
    Credential.objects.filter(pk=issued.credential.pk).update(revoked_at="2020-01-01T00:00:00Z")
    PolicyVersion.objects.update_or_create(pk=1, defaults={"version": 10_000})
    publish_invalidation()
    revoked_at = time.monotonic()
    while _list_tools(url, issued.token).status_code != 401:
        assert time.monotonic() - revoked_at < 1.5, "revocation not seen within the poll interval"
        time.sleep(0.05)


def test_last_used_at_is_kept_without_a_write_per_request(gateway, tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/search")
    for _ in range(3):
        _list_tools(gateway.proxy_url("docs"), issued.token)
    issued.credential.refresh_from_db()
    assert issued.credential.last_used_at is None  # nothing written yet ...

    from gateway.proxy.runtime import runtime_for_loop

    async def flush() -> None:
        await runtime_for_loop(gateway.server.loop).last_used.flush()

    gateway.server.call(flush())
    issued.credential.refresh_from_db()
    assert issued.credential.last_used_at is not None  # ... until the periodic flush


def test_a_burst_of_cold_calls_loads_the_policy_once(gateway, tenant, target):
    from concurrent.futures import ThreadPoolExecutor

    issued = issue_credential(tenant, target, "POST /tools/search")
    stop_background_invalidation(gateway)
    with count_request_queries() as single:
        assert _list_tools(gateway.proxy_url("docs"), issued.token).status_code == 200
    from policies.cache import policy_cache

    policy_cache.invalidate()
    with count_request_queries() as burst, ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(
            pool.map(lambda _: _list_tools(gateway.proxy_url("docs"), issued.token).status_code, range(16))
        )
    assert statuses == [200] * 16
    assert len(burst.statements) == len(single.statements)  # one load per key, not one per call


def test_a_cold_call_while_the_database_is_down_gets_503_not_500(gateway, tenant, target, monkeypatch):
    from django.db import OperationalError

    import policies.cache

    issued = issue_credential(tenant, target, "POST /tools/search")

    def database_down(**kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(policies.cache, "compiled_target_get", database_down)
    response = _list_tools(gateway.proxy_url("docs"), issued.token)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert "configuration database is unavailable" in response.json()["error"]["message"]
