"""The processes the proxy benchmark starts besides the gateway: the upstream and the agents.

``python bench/loadgen.py upstream PORT`` serves tests/upstream.py's MCP server on uvicorn.
``python bench/loadgen.py load URL TOKEN CONCURRENCY REQUESTS WARMUP MAX_SECONDS`` opens one
keep-alive connection and one MCP session per concurrent agent, sends the warm-up calls, prints
READY, waits for a line on stdin, sends the measured calls and prints one JSON line of results.
Run by bench/proxy_bench.py, not by hand.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL_VERSION = "2025-11-25"


def serve_upstream(port: int) -> None:
    """tests/upstream.py's MCP server on uvicorn, lifespan on (the SDK's session manager needs it)."""
    import uvicorn

    sys.path.insert(0, str(ROOT))
    from tests.upstream import build_upstream

    app, _ = build_upstream()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", access_log=False)


def _call_body(request_id: int) -> bytes:
    params = {"name": "search", "arguments": {"query": "bench"}}
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}).encode()


async def _open_session(client: Any, url: str) -> dict[str, str]:
    params = {
        "protocolVersion": PROTOCOL_VERSION,
        "capabilities": {},
        "clientInfo": {"name": "bench", "version": "1"},
    }
    response = await client.post(
        url, json={"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": params}
    )
    response.raise_for_status()
    session = {"mcp-session-id": response.headers["mcp-session-id"], "mcp-protocol-version": PROTOCOL_VERSION}
    notified = await client.post(
        url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=session
    )
    notified.raise_for_status()
    return session


async def _run_phase(
    clients: list[Any], sessions: list[dict[str, str]], url: str, total: int, deadline: float
):
    remaining = [total]
    latencies: list[float] = []
    errors: list[str] = []

    async def agent(client: Any, session: dict[str, str]) -> None:
        while remaining[0] > 0 and time.monotonic() < deadline:
            remaining[0] -= 1
            started = time.perf_counter()
            response = await client.post(url, content=_call_body(remaining[0] + 1), headers=session)
            elapsed = time.perf_counter() - started
            if response.status_code == 200 and b"result for bench" in response.content:
                latencies.append(elapsed)
            else:
                errors.append(f"{response.status_code} {response.content[:200]!r}")

    started = time.perf_counter()
    await asyncio.gather(*(agent(c, s) for c, s in zip(clients, sessions, strict=True)))
    return latencies, errors, time.perf_counter() - started


async def generate_load(
    url: str, token: str, concurrency: int, total: int, warmup: int, max_seconds: float
) -> None:
    """Open ``concurrency`` sessions, warm up, say READY, wait for GO on stdin, then measure."""
    import httpx2

    headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
    if token != "-":
        headers["authorization"] = f"Bearer {token}"
    limits = httpx2.Limits(max_connections=1, max_keepalive_connections=1)
    clients = [
        httpx2.AsyncClient(headers=headers, timeout=30, limits=limits, trust_env=False)
        for _ in range(concurrency)
    ]
    try:
        sessions = list(await asyncio.gather(*(_open_session(c, url) for c in clients)))
        await _run_phase(clients, sessions, url, warmup, time.monotonic() + max_seconds)
        print("READY", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        cpu_before = time.process_time()
        latencies, errors, elapsed = await _run_phase(
            clients, sessions, url, total, time.monotonic() + max_seconds
        )
        cpu = time.process_time() - cpu_before
        print(
            json.dumps(
                {
                    "latencies": latencies,
                    "errors": errors[:5],
                    "error_count": len(errors),
                    "elapsed": elapsed,
                    "cpu": cpu,
                }
            ),
            flush=True,
        )
        await asyncio.gather(
            *(c.delete(url, headers=s) for c, s in zip(clients, sessions, strict=True)),
            return_exceptions=True,
        )
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))


def main() -> None:
    role, *rest = sys.argv[1:]
    if role == "upstream":
        serve_upstream(int(rest[0]))
    elif role == "load":
        url, token, concurrency, total, warmup, max_seconds = rest
        asyncio.run(generate_load(url, token, int(concurrency), int(total), int(warmup), float(max_seconds)))
    else:
        raise SystemExit(f"unknown role {role!r}: upstream or load")


if __name__ == "__main__":
    main()
