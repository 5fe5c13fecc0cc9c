"""Fixtures of the metering tests: a controllable clock, limiters, meters, raw MCP calls."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx2
import orjson
import pytest

from metering.compiler import CompiledMeter, compile_meter

JSONRPC_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
MODERN = "2026-07-28"
MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientInfo": {"name": "metering-test", "version": "1"},
    "io.modelcontextprotocol/clientCapabilities": {},
}


class Clock:
    """A clock the test moves by hand; starts at the real time so Redis expiries stay sensible."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def use_clock(gateway, clock: Clock) -> None:
    """Make the running gateway's meters read ``clock``."""
    from gateway.proxy.runtime import runtime_for_loop

    runtime = runtime_for_loop(gateway.server.loop)
    assert runtime is not None
    runtime.meters.clock = clock


_ids = iter(range(1_000_000, 2_000_000))


def make_meter(
    *,
    kind: str = "request_count",
    window: str = "minute",
    limit: float = 5,
    route: str = "",
    value_paths: list[str] | None = None,
    fail_mode: str = "open",
    tenant_id: int = 1,
) -> CompiledMeter:
    """A compiled meter with a unique id and creation time, so its counters are its own."""
    return compile_meter(
        meter_id=next(_ids),
        tenant_id=tenant_id,
        target_id=None,
        credential_id=None,
        kind=kind,
        window=window,
        limit=limit,
        fail_mode=fail_mode,
        route=route,
        value_paths=value_paths or [],
        created_at=datetime.now(UTC),
    )


def tool_call(tool: str, arguments: dict | None = None, request_id: int = 1) -> bytes:
    """A stateless (2026-07-28) tools/call: one POST is one whole call, answered in JSON."""
    params = {"name": tool, "arguments": arguments or {}, "_meta": MODERN_META}
    return orjson.dumps({"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params})


def post_call(url: str, token: str, tool: str = "search", request_id: int = 1, **kwargs) -> httpx2.Response:
    headers = {
        **JSONRPC_HEADERS,
        "Authorization": f"Bearer {token}",
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": "tools/call",
        "Mcp-Name": tool,
    }
    body = tool_call(tool, {"query": "q"} if tool == "search" else {}, request_id)
    return httpx2.post(url, content=body, headers=headers, timeout=10, **kwargs)
