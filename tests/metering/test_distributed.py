"""Acceptance: two gateway processes sharing one Redis enforce one limit exactly, even on a saturated CPU.

With the event loops starved by busy processes, answers from Redis are read late; a deadline on
wall time used to mistake that for an unreachable Redis and let calls through unmetered (81 of 100
against a limit of 30). The deadline now counts Redis's own time, so exactly the limit passes.
"""

from __future__ import annotations

import asyncio
import os

import httpx2

from metering.services import meter_create
from tests.conftest import issue_credential, run
from tests.metering.conftest import JSONRPC_HEADERS, MODERN, tool_call
from tests.metering.processes import BusyProcesses, GatewayProcess

# Enough spinning processes to keep every core busy while the calls run.
BUSY = max(4, 2 * (os.cpu_count() or 1))


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
    async with httpx2.AsyncClient(headers=headers, timeout=60, limits=limits) as client:
        responses = await asyncio.gather(
            *(
                client.post(urls[n % len(urls)], content=tool_call("search", {"query": "q"}, n))
                for n in range(calls)
            )
        )
    return [response.status_code for response in responses]


def meter_details(gateway: GatewayProcess) -> dict:
    """The gateway's own account of its meters, from ``/readyz`` details."""
    response = httpx2.get(f"http://127.0.0.1:{gateway.port}/readyz", timeout=30)
    return response.json()["details"]["meters"]


def test_two_gateway_processes_on_one_redis_pass_exactly_the_limit(tenant, target, redis_url):
    issued = issue_credential(tenant, target, "POST /tools/search")
    meter_create(tenant=tenant, credential=issued.credential, kind="request_count", window="minute", limit=30)
    # A quarter of a second of Redis time is plenty; of wall time, a starved loop overruns it.
    gateways = [GatewayProcess(redis_url=redis_url, GATEWAY_REDIS_TIMEOUT_SECONDS="0.25") for _ in range(2)]
    busy = None
    try:
        for gateway in gateways:
            gateway.wait_ready()
        busy = BusyProcesses(BUSY)
        statuses = run(fire([g.proxy_url("docs") for g in gateways], issued.token, 100))
        details = [meter_details(gateway) for gateway in gateways]
    finally:
        if busy is not None:
            busy.stop()
        for gateway in gateways:
            gateway.stop()
    # The gateways' own account is part of the message: it tells a fail-open (Redis silent for the
    # timeout of its own time) from a counting error.
    assert sorted(set(statuses)) == [200, 429], details
    assert statuses.count(200) == 30, details
    assert statuses.count(429) == 70, details
    for meters in details:
        assert meters["enforced"] is True
        assert meters["calls_passed_unenforced"] == 0
