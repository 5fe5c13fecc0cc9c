"""What response protection adds to a tools/call through the whole gateway pipeline, in CPU per call.

Run by hand from the repository root::

    .venv/bin/python bench/protection_gateway_bench.py [--calls 300] [--rounds 9]

This process runs the gateway's ASGI application in-process (``gateway.asgi.application``, called
directly: every pipeline step, the pooled upstream client and the write-ahead audit, over a
throwaway SQLite database); the upstream is a minimal HTTP server in another process on loopback
that answers every POST with a canned JSON-RPC ``tools/call`` result, so its CPU is not counted.
The gateway's CPU is ``time.process_time`` (user + system, every thread of this process: the
audit writer included) around ``--calls`` sequential calls.

Cases, each its own tenant with one credential (three allow-rules, the call matches the last):

- ``none``: no filter and no redaction policy configured at all (today's pipeline);
- ``unmatched``: 10 filters and a redaction policy with every detector, all scoped to a route the
  call does not match, so nothing applies to it;
- ``protected``: the same 10 filters and every detector (mask) on every call.

Each for a result of about 10 KB and about 100 KB (the ``result`` member serialised; the
payload is in ``structuredContent`` and again as JSON text, as an MCP server returning a dict
sends it, so filters and detectors work on both). The cases are interleaved within each round;
"added" is the median over rounds of the round's difference to ``none`` for the same size.
Targets (issue 8): protected 10 KB < 1 ms, 100 KB < 5 ms; unmatched < 0.02 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from filter_bench import FILTER_PATHS  # noqa: E402
from filter_bench import payload as filter_payload  # noqa: E402
from proxy_bench import (  # noqa: E402
    ALLOW_RULES,
    code_revision,
    cpu_seconds,
    free_port,
    gateway_env,
    machine_busy_seconds,
    machine_description,
    start,
    stop,
    wait_until_up,
)

PYTHON = sys.executable
SIZES = {"10 KB": 10_000, "100 KB": 100_000}
CASES = ("none", "unmatched", "protected")
UNMATCHED_ROUTE = "POST /tools/never-called-*"
CALL = orjson.dumps(
    {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "search", "arguments": {"q": "x"}}}
)


# --- the upstream (its own process) ----------------------------------------------------------------


def tool_payload(items: int) -> dict[str, Any]:
    """filter_bench's search-like payload, some items carrying personal data and secrets."""
    data = filter_payload(items)
    for n, item in enumerate(data["items"]):  # type: ignore[arg-type]
        if n % 5 == 0:
            item["contact"] = {"email": f"person{n}@example.org", "phone": "+44 20 7946 0958"}
        if n % 17 == 0:
            item["payment"] = {"card": "4111 1111 1111 1111", "iban": "GB82 WEST 1234 5698 7654 32"}
        if n % 23 == 0:
            item["debug"] = "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl from 10.0.0.12"
    return data


def tool_result(size: int) -> dict[str, Any]:
    """A tools/call ``result`` of at least ``size`` bytes serialised."""
    items = 1
    while True:
        data = tool_payload(items)
        result = {
            "content": [{"type": "text", "text": orjson.dumps(data).decode()}],
            "structuredContent": data,
            "isError": False,
        }
        if len(orjson.dumps(result)) >= size:
            return result
        items += max(1, items // 8)


def serve_upstream(port: int) -> None:
    """Answer ``POST /<size>`` with a canned JSON-RPC reply (keep-alive HTTP/1.1, nothing else)."""
    bodies = {
        f"/{size}".encode(): orjson.dumps({"jsonrpc": "2.0", "id": 1, "result": tool_result(size)})
        for size in SIZES.values()
    }
    replies = {
        path: b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
        % (len(body), body)
        for path, body in bodies.items()
    }
    missing = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                lines = head.split(b"\r\n")
                path = lines[0].split(b" ")[1]
                length = next(
                    (
                        int(line.split(b":", 1)[1])
                        for line in lines
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                await reader.readexactly(length)
                writer.write(replies.get(path, missing))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# --- the configuration -------------------------------------------------------------------------------


def configure(upstream: str) -> dict[tuple[str, str], tuple[str, str]]:
    """Migrate, then per case a tenant, a target per size and a credential: {(case, size): (slug, token)}."""
    from django.core.management import call_command

    from gateway.services import credential_create, target_create, tenant_create
    from policies.services import filter_create, redaction_policy_set

    call_command("migrate", verbosity=0)
    found: dict[tuple[str, str], tuple[str, str]] = {}
    for case in CASES:
        tenant = tenant_create(name=case)
        targets = {
            label: target_create(tenant=tenant, slug=f"{case}-{size}", upstream_url=f"{upstream}/{size}")
            for label, size in SIZES.items()
        }
        issued = credential_create(tenant=tenant, name=case, targets=targets.values(), allow=ALLOW_RULES)
        if case != "none":
            route = UNMATCHED_ROUTE if case == "unmatched" else ""
            for paths in FILTER_PATHS:
                filter_create(tenant=tenant, paths=paths, route=route)
            redaction_policy_set(tenant=tenant, detectors=["all"], action="mask", route=route)
        for label, target in targets.items():
            found[(case, label)] = (target.slug, issued.token)
    return found


# --- the measurement ---------------------------------------------------------------------------------


async def call(application: Any, slug: str, token: str) -> bytes:
    """One tools/call through the gateway's ASGI application; the response body."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": f"/mcp/{slug}/",
        "raw_path": f"/mcp/{slug}/".encode(),
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", b"application/json"),
            (b"accept", b"application/json, text/event-stream"),
            (b"content-length", str(len(CALL)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    sent = False
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": CALL, "more_body": False}
        await never  # the agent never disconnects
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        else:
            chunks.append(message.get("body", b""))

    await application(scope, receive, send)
    body = b"".join(chunks)
    if status != 200:
        raise SystemExit(f"{slug}: HTTP {status}: {body[:300]!r}")
    return body


async def cpu_ms_per_call(application: Any, slug: str, token: str, calls: int) -> float:
    started = time.process_time()
    for _ in range(calls):
        await call(application, slug, token)
    return (time.process_time() - started) * 1000 / calls


def selection_us(found: dict[tuple[str, str], tuple[str, str]], repeat: int = 20_000) -> float:
    """CPU microseconds of the one thing the unmatched case does more than ``none`` before the
    response: ``select_for_call`` over its 10 filters and redaction policy, none of whose routes match
    (the reply is then neither read whole nor parsed). Too small to resolve through the gateway."""
    from gateway.models import Target
    from gateway.tokens import token_prefix
    from policies.protect import select_for_call
    from policies.selectors import compiled_credential_get

    slug, token = found[("unmatched", "10 KB")]
    prefix = token_prefix(token)
    credential = compiled_credential_get(prefix=prefix) if prefix else None
    if credential is None or len(credential.filters) != len(FILTER_PATHS):
        raise SystemExit("the unmatched case's credential does not carry its filters")
    target_id = Target.objects.get(slug=slug).id
    started = time.process_time()
    for _ in range(repeat):
        if select_for_call(credential, target_id, "POST", "/tools/search", "tools/call") is not None:
            raise SystemExit("a protection applies to the unmatched case")
    return (time.process_time() - started) * 1e6 / repeat


def check_protected(bodies: dict[tuple[str, str], bytes]) -> None:
    """The protected replies lost their ids and were masked; the others came back as sent."""
    for (case, label), body in bodies.items():
        masked = b"[REDACTED:" in body and b'"id":"item-' not in body and b"@example.org" not in body
        if masked != (case == "protected"):
            raise SystemExit(
                f"{case} {label}: the reply was {'not ' if case == 'protected' else ''}protected"
            )


async def measure(args: argparse.Namespace, found: dict[tuple[str, str], tuple[str, str]]) -> None:
    from gateway.asgi import application
    from gateway.proxy.runtime import close_runtime

    try:
        check_protected({key: await call(application, *found[key]) for key in found})
        for key in found:  # warm-up: caches, pooled connections, the audit writer
            await cpu_ms_per_call(application, *found[key], args.calls)
        samples: dict[tuple[str, str], list[float]] = {key: [] for key in found}
        busy, wall, own = machine_busy_seconds(), time.monotonic(), time.process_time()
        upstream = cpu_seconds(args.upstream_pid)
        for round_index in range(args.rounds):
            keys = list(found)
            keys = keys[round_index % len(keys) :] + keys[: round_index % len(keys)]
            for key in keys:
                samples[key].append(await cpu_ms_per_call(application, *found[key], args.calls))
        ours = time.process_time() - own + cpu_seconds(args.upstream_pid) - upstream
        other = max(0.0, machine_busy_seconds() - busy - ours) / (time.monotonic() - wall)
        report(samples, args, other)
    finally:
        await close_runtime()


def report(samples: dict[tuple[str, str], list[float]], args: argparse.Namespace, other: float) -> None:
    print(f"\n{args.rounds} rounds of {args.calls} calls per case; other load about {other:.2f} cores")
    print(f"Unmatched: selecting no protection costs {args.selection_us:.2f} µs CPU per call\n")
    print("| result | case | gateway CPU ms/call (median) | min-max | added vs none (median of rounds) |")
    print("|---|---|---:|---:|---:|")
    for label in SIZES:
        base = samples[("none", label)]
        for case in CASES:
            values = samples[(case, label)]
            diffs = [v - b for v, b in zip(values, base, strict=True)]
            added = "-" if case == "none" else f"{statistics.median(diffs):+.3f}"
            print(
                f"| {label} | {case} | {statistics.median(values):.3f} "
                f"| {min(values):.3f}-{max(values):.3f} | {added} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=300, help="calls per case per round (default 300)")
    parser.add_argument("--rounds", type=int, default=9, help="rounds, cases interleaved (default 9)")
    parser.add_argument("--upstream", type=int, help=argparse.SUPPRESS)  # the upstream process
    args = parser.parse_args()
    if args.upstream:
        serve_upstream(args.upstream)
        return
    print(f"Machine: {machine_description()}; gateway code at {code_revision()}")
    print(f"Command: {' '.join([Path(PYTHON).name, *sys.argv])}; {time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(f"Load average before: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="protection-bench-") as tmp_name:
        tmp = Path(tmp_name)
        env = gateway_env(tmp)
        os.environ.clear()
        os.environ.update(env)
        port = free_port()
        log = tmp / "upstream.log"
        upstream = start([PYTHON, __file__, "--upstream", str(port)], env, log)
        try:
            wait_until_up(f"http://127.0.0.1:{port}/", upstream, log)
            import django

            django.setup(set_prefix=False)
            found = configure(f"http://127.0.0.1:{port}")
            args.selection_us = selection_us(found)
            args.upstream_pid = upstream.pid
            runner = _runner()
            with runner:
                runner.run(measure(args, found))
        finally:
            stop(upstream)
    print(f"Load average after: {os.getloadavg()[0]:.2f}")


def _runner() -> asyncio.Runner:
    """uvloop when installed, as ``manage.py serve`` runs the gateway under uvicorn."""
    try:
        import uvloop
    except ImportError:
        return asyncio.Runner()
    return asyncio.Runner(loop_factory=uvloop.new_event_loop)


if __name__ == "__main__":
    main()
