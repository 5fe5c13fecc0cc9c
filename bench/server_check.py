"""Can each ASGI server do what the gateway needs? Run by hand from the repository root::

    .venv/bin/python bench/server_check.py [--server granian|uvicorn|daphne|all]

1. Event streams stay streams: through the gateway (``manage.py serve --server X``), a ``tools/call``
   of the upstream's ``slow_count`` sends a progress event every 0.3 s; each event must reach the
   agent when it is sent, not all together at the end.
2. WebSockets: the server, serving a small echo application, must accept an upgrade and echo a
   frame (the gateway's application itself serves only HTTP today).

Loopback only; every wait is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import loadgen
import proxy_bench as bench

STEPS = 4


async def websocket_echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An ASGI app that echoes one WebSocket text message, then closes."""
    if scope["type"] != "websocket":
        return
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    message = await receive()
    await send({"type": "websocket.send", "text": message.get("text") or ""})
    await send({"type": "websocket.close", "code": 1000})


async def stream_arrivals(url: str, token: str) -> list[float]:
    """Seconds after the request at which each progress event (and the result) reached the agent."""
    import httpx2

    headers = {"accept": "application/json, text/event-stream", "authorization": f"Bearer {token}"}
    async with httpx2.AsyncClient(headers=headers, timeout=30, trust_env=False) as client:
        params = {
            "protocolVersion": loadgen.PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "check", "version": "1"},
        }
        init = await client.post(
            url, json={"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": params}
        )
        session = {
            "mcp-session-id": init.headers["mcp-session-id"],
            "mcp-protocol-version": loadgen.PROTOCOL_VERSION,
        }
        await client.post(
            url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=session
        )
        call = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "slow_count", "arguments": {"steps": STEPS}, "_meta": {"progressToken": "p"}},
        }
        arrivals: list[float] = []
        started = time.perf_counter()
        async with client.stream("POST", url, json=call, headers=session) as response:
            if response.status_code != 200:
                raise SystemExit(
                    f"{url}: slow_count answered {response.status_code}: {(await response.aread())[:300]!r}"
                )
            async for chunk in response.aiter_bytes():
                arrivals.extend(time.perf_counter() - started for _ in range(chunk.count(b"data:")))
        return arrivals


def websocket_echoes(port: int) -> str:
    """A raw RFC 6455 handshake and one masked text frame; the echoed text, or why it failed."""
    key = base64.b64encode(os.urandom(16)).decode()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            data = sock.recv(4096)
            if not data:
                break
            head += data
        status = head.split(b"\r\n", 1)[0].decode(errors="replace")
        if " 101 " not in status + " ":
            return f"refused ({status or 'connection closed'})"
        payload, mask = b"ping", os.urandom(4)
        sock.sendall(
            bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        )
        frame = head.split(b"\r\n\r\n", 1)[1]
        while len(frame) < 2 or len(frame) < 2 + (frame[1] & 0x7F):
            frame += sock.recv(4096)
        return f"echoed {frame[2 : 2 + (frame[1] & 0x7F)].decode()!r}"


def echo_server_command(server: str, port: int) -> list[str]:
    target = "server_check:websocket_echo"
    if server == "granian":
        return [
            bench.PYTHON,
            "-m",
            "granian",
            "--interface",
            "asgi",
            "--port",
            str(port),
            "--log-level",
            "warning",
            target,
        ]
    if server == "uvicorn":
        return [bench.PYTHON, "-m", "uvicorn", "--port", str(port), "--log-level", "warning", target]
    return [bench.PYTHON, "-m", "daphne", "-p", str(port), "-v", "0", target]


def check_websocket(server: str, tmp: Path) -> str:
    port = bench.free_port()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent)}
    process = bench.start(echo_server_command(server, port), env, tmp / f"echo-{server}.log")
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                return websocket_echoes(port)
            except ConnectionRefusedError:
                time.sleep(0.1)
        return "server did not start"
    except OSError as exc:
        return f"failed ({type(exc).__name__}: {exc})"
    finally:
        bench.stop(process)


def check_streaming(server: str, token: str, env: dict[str, str], tmp: Path) -> list[float]:
    port = bench.free_port()
    log = tmp / f"gateway-{server}.log"
    gateway = bench.start(
        [bench.PYTHON, str(bench.ROOT / "manage.py"), "serve", "--server", server, "--port", str(port)],
        env,
        log,
    )
    try:
        bench.wait_until_up(f"http://127.0.0.1:{port}/healthz", gateway, log)
        return asyncio.run(
            asyncio.wait_for(stream_arrivals(f"http://127.0.0.1:{port}/mcp/bench/", token), 30)
        )
    finally:
        bench.stop(gateway)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", choices=[*bench.SERVERS, "all"], default="all")
    servers = bench.SERVERS if parser.parse_args().server == "all" else (parser.parse_args().server,)
    with tempfile.TemporaryDirectory(prefix="server-check-") as tmp_name:
        tmp = Path(tmp_name)
        env = bench.gateway_env(tmp)
        up_port = bench.free_port()
        upstream_url = f"http://127.0.0.1:{up_port}/mcp"
        upstream = bench.start(
            [bench.PYTHON, str(bench.LOADGEN), "upstream", str(up_port)], env, tmp / "upstream.log"
        )
        report: dict[str, Any] = {}
        try:
            bench.wait_until_up(upstream_url, upstream, tmp / "upstream.log")
            token = bench.prepare_database(env, upstream_url, rules=[("POST", "/tools/slow_count")])
            for server in servers:
                arrivals = check_streaming(server, token, env, tmp)
                # Progress events are 0.3 s apart: streamed, the first lands well before the last.
                streamed = len(arrivals) == STEPS + 1 and arrivals[-1] - arrivals[0] > 0.3 * (STEPS - 1)
                report[server] = {
                    "sse_event_arrivals_s": [round(a, 3) for a in arrivals],
                    "sse_streamed_event_by_event": streamed,
                    "websocket": check_websocket(server, tmp),
                }
        finally:
            bench.stop(upstream)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
