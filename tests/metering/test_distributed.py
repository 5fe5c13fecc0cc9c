"""Acceptance: two gateway processes sharing one Redis enforce one limit exactly."""

from __future__ import annotations

import asyncio

import httpx2

from metering.services import meter_create
from tests.conftest import issue_credential, run
from tests.metering.conftest import JSONRPC_HEADERS, MODERN, tool_call
from tests.metering.processes import GatewayProcess


async def fire(urls: list[str], token: str, calls: int) -> list[int]:
    """``calls`` tools/call requests at once, spread evenly over ``urls``."""
    headers = {
        **JSONRPC_HEADERS,
        "Authorization": f"Bearer {token}",
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": "tools/call",
        "Mcp-Name": "search",
    }
    limits = httpx2.Limits(max_connections=calls)
    async with httpx2.AsyncClient(headers=headers, timeout=30, limits=limits) as client:
        responses = await asyncio.gather(
            *(
                client.post(urls[n % len(urls)], content=tool_call("search", {"query": "q"}, n))
                for n in range(calls)
            )
        )
    return [response.status_code for response in responses]


def test_two_gateway_processes_on_one_redis_pass_exactly_the_limit(tenant, target, redis_url):
    issued = issue_credential(tenant, target, "POST /tools/search")
    meter_create(tenant=tenant, credential=issued.credential, kind="request_count", window="minute", limit=30)
    gateways = [GatewayProcess(redis_url=redis_url) for _ in range(2)]
    try:
        for gateway in gateways:
            gateway.wait_ready()
        statuses = run(fire([g.proxy_url("docs") for g in gateways], issued.token, 100))
    finally:
        for gateway in gateways:
            gateway.stop()
    assert sorted(set(statuses)) == [200, 429]
    assert statuses.count(200) == 30
    assert statuses.count(429) == 70
