"""What meters cost: the full pipeline with and without two Redis meters, against direct.

Run by hand from the repository root::

    .venv/bin/python bench/metering_bench.py [--requests 2000]

It starts, on loopback and in separate processes, a redis-server of its own (so its command
counts are the benchmark's alone), the test MCP server (tests/upstream.py) and the gateway
(``manage.py serve --server uvicorn``, SQLite, audit on). Two credentials carry the same three
allow-rules; one also has two request_count meters (minute and day, limits too high to refuse).
For direct calls, the gateway without meters and the gateway with the two meters, at concurrency
1 and 32, it sends stateless ``tools/call`` requests of ``search`` and prints req/s, p50 and p99,
and the Redis commands each call sent (read from INFO commandstats).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2
import orjson
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers import free_port  # noqa: E402

PYTHON = sys.executable
RULES = [("POST", "/prompts/*"), ("POST", "/resources/docs://**"), ("POST", "/tools/search")]
MODERN = "2026-07-28"
META = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "1"},
    "io.modelcontextprotocol/clientCapabilities": {},
}
SETUP = """
from gateway.services import credential_create, target_create, tenant_create
from metering.services import meter_create
tenant = tenant_create(name="bench")
target = target_create(tenant=tenant, slug="bench", upstream_url={url!r})
plain = credential_create(tenant=tenant, name="plain", targets=[target], allow={rules!r})
metered = credential_create(tenant=tenant, name="metered", targets=[target], allow={rules!r})
for window in ("minute", "day"):
    meter_create(tenant=tenant, credential=metered.credential, kind="request_count", window=window, limit=10**9)
print("TOKENS", plain.token, metered.token)
"""


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_for(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx2.get(url, timeout=1)
            return
        except httpx2.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


def call_body(request_id: int) -> bytes:
    params = {"name": "search", "arguments": {"query": "bench"}, "_meta": META}
    return orjson.dumps({"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params})


async def load(url: str, token: str | None, concurrency: int, total: int) -> tuple[list[float], float, int]:
    """``total`` calls from ``concurrency`` agents, each on its own keep-alive connection."""
    headers = {
        "accept": "application/json, text/event-stream",
        "content-type": "application/json",
        "mcp-protocol-version": MODERN,
        "mcp-method": "tools/call",
        "mcp-name": "search",
    }
    if token:
        headers["authorization"] = f"Bearer {token}"
    clients = [httpx2.AsyncClient(headers=headers, timeout=30) for _ in range(concurrency)]
    remaining, latencies, errors = [total], [], [0]

    async def agent(client: httpx2.AsyncClient) -> None:
        while remaining[0] > 0:
            remaining[0] -= 1
            started = time.perf_counter()
            response = await client.post(url, content=call_body(remaining[0]))
            latencies.append(time.perf_counter() - started)
            errors[0] += response.status_code != 200

    try:
        await asyncio.gather(*(agent(c) for c in clients))  # warm-up: connections, caches
        remaining[0], latencies[:] = total, []
        started = time.perf_counter()
        await asyncio.gather(*(agent(c) for c in clients))
        return latencies, time.perf_counter() - started, errors[0]
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process, from /proc."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def redis_calls(client: redis.Redis) -> int:
    """Commands clients sent (a script's own commands are not counted separately)."""
    stats = client.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k in ("cmdstat_evalsha", "cmdstat_eval"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="metering-bench-"))
    log = work / "servers.log"
    redis_port, upstream_port, gateway_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{work / 'bench.sqlite3'}",
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "GATEWAY_ENCRYPTION_KEYS": "JtK1SvNtAorb16ntL5ZIrN3U0silIHlMv6BBkYLowhM=",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "GATEWAY_AUDIT_WAL_DIR": str(work / "spool"),
        "GATEWAY_UPSTREAM_ALLOW": "127.0.0.0/8",  # the benchmark upstream listens on loopback
        "LOG_LEVEL": "WARNING",
    }
    processes = [
        start(["redis-server", "--port", str(redis_port), "--save", "", "--appendonly", "no"], env, log),
        start([PYTHON, "-c", UPSTREAM.format(port=upstream_port)], env, log),
    ]
    try:
        upstream = f"http://127.0.0.1:{upstream_port}/mcp"
        subprocess.run([PYTHON, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
        setup = SETUP.format(url=upstream, rules=RULES)
        out = subprocess.run(
            [PYTHON, "manage.py", "shell", "-c", setup],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        plain, metered = out.split("TOKENS", 1)[1].split()
        serve = [PYTHON, "manage.py", "serve", "--server", "uvicorn", "--port", str(gateway_port)]
        processes.append(start(serve, env, log))
        wait_for(f"http://127.0.0.1:{gateway_port}/healthz")
        wait_for(upstream)
        gateway = f"http://127.0.0.1:{gateway_port}/mcp/bench/"
        report(upstream, gateway, plain, metered, redis_port, args.requests, gateway_pid=processes[-1].pid)
    finally:
        for process in processes:
            process.terminate()
            process.wait(15)


UPSTREAM = """
import sys, uvicorn
sys.path.insert(0, ".")
from tests.upstream import build_upstream
app, _ = build_upstream()
uvicorn.run(app, host="127.0.0.1", port={port}, log_level="warning", lifespan="on", access_log=False)
"""


def report(
    direct: str, proxied: str, plain: str, metered: str, redis_port: int, total: int, *, gateway_pid: int
) -> None:
    counter = redis.Redis(port=redis_port)
    cases = [
        ("direct", direct, None),
        ("gateway, no meter", proxied, plain),
        ("gateway, 2 meters", proxied, metered),
    ]
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print("| case | concurrency | req/s | p50 ms | p99 ms | gateway CPU ms/call | Redis calls per call |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, url, token in cases:
        for concurrency in (1, 32):
            before, cpu_before = redis_calls(counter), cpu_seconds(gateway_pid)
            latencies, elapsed, errors = asyncio.run(load(url, token, concurrency, total))
            per_call = (redis_calls(counter) - before) / (2 * total)  # the warm-up sent as many
            cpu = (cpu_seconds(gateway_pid) - cpu_before) / (2 * total) * 1000 if token else 0.0
            latencies.sort()
            p99 = latencies[int(0.99 * (len(latencies) - 1))] * 1000
            print(
                f"| {label} | {concurrency} | {len(latencies) / elapsed:,.0f} | "
                f"{statistics.median(latencies) * 1000:.2f} | {p99:.2f} | {cpu:.2f} | {per_call:.2f} |"
                + (f" ({errors} errors)" if errors else "")
            )
    counter.close()


if __name__ == "__main__":
    main()
