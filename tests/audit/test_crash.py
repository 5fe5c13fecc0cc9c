"""Acceptance: a gateway killed under load loses no audit event of a call it answered.

Real processes: the gateway on uvicorn in its own OS process, the test's upstream on a loopback port,
the test database (PostgreSQL with ``DATABASE_URL``).
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import sys
import time
from collections import Counter
from pathlib import Path

import httpx2

from audit.models import AuditEvent
from tests.conftest import issue_credential, run
from tests.metering.conftest import JSONRPC_HEADERS, MODERN, tool_call
from tests.metering.processes import GatewayProcess, Process, process_env
from tests.servers import free_port

LOAD_SECONDS = 2.0
CONCURRENCY = 24


class WalGatewayProcess(GatewayProcess):
    """A gateway process whose audit write-ahead directory is ``wal_dir`` (shared between processes)."""

    def __init__(self, *, wal_dir: Path, database_url: str | None = None, **settings: str) -> None:
        self.port = free_port()
        extra = {"DJANGO_SETTINGS_MODULE": "tests.audit.wal_settings", "GATEWAY_AUDIT_WAL_DIR": str(wal_dir)}
        env = process_env(redis_url="", **extra, **settings)
        if database_url is not None:
            env["DATABASE_URL"] = database_url
        args = [sys.executable, "-m", "uvicorn", "gateway.asgi:application", "--host", "127.0.0.1"]
        args += ["--port", str(self.port), "--lifespan", "on", "--log-level", "warning"]
        Process.__init__(self, args, env)


async def load_until_killed(gateway: WalGatewayProcess, token: str) -> list[int]:
    """Concurrent tools/call with distinct ids; SIGKILL the gateway mid-load. Returns the ids answered 200."""
    headers = {
        **JSONRPC_HEADERS,
        "Authorization": f"Bearer {token}",
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": "tools/call",
        "Mcp-Name": "search",
    }
    ids = itertools.count(1)
    answered: list[int] = []
    stop_at = time.monotonic() + LOAD_SECONDS

    async def worker(client: httpx2.AsyncClient) -> None:
        while True:
            call_id = next(ids)
            body = tool_call("search", {"query": "q"}, call_id)
            try:
                response = await client.post(
                    gateway.proxy_url("docs"), content=body, headers={"X-Request-ID": f"kill-{call_id}"}
                )
            except httpx2.HTTPError:
                return  # the gateway is gone
            if response.status_code == 200:
                answered.append(call_id)

    async def killer() -> None:
        await asyncio.sleep(max(stop_at - time.monotonic(), 0))
        gateway.popen.send_signal(signal.SIGKILL)

    limits = httpx2.Limits(max_connections=CONCURRENCY)
    async with httpx2.AsyncClient(headers=headers, timeout=30, limits=limits) as client:
        await asyncio.gather(killer(), *(worker(client) for _ in range(CONCURRENCY)))
    return answered


def wait_for_events(expected: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while AuditEvent.objects.filter(request_id__startswith="kill-").count() < expected:
        if time.monotonic() > deadline:
            return
        time.sleep(0.2)
    time.sleep(1.0)  # and nothing more arrives (no duplicate)


def test_sigkill_under_load_loses_no_audit_event_of_an_answered_call(tenant, target, tmp_path):
    issued = issue_credential(tenant, target, "POST /tools/search")
    # a writer that lingers a minute before its first batch, so however late the machine runs the
    # kill finds every answered call on disk only (not yet stored): the restart must bring them all
    first = WalGatewayProcess(wal_dir=tmp_path, GATEWAY_AUDIT_FLUSH_SECONDS="60")
    try:
        first.wait_ready()
        answered = run(load_until_killed(first, issued.token))
        first.popen.wait(10)
    finally:
        first.stop()
    assert first.popen.returncode == -signal.SIGKILL
    assert len(answered) > 20, "the load did not get going"
    # none of this test's calls reached the database before the restart (counted by their own request
    # ids: a gateway an earlier test stopped may still be storing its last events in this database)
    stored_before_restart = AuditEvent.objects.filter(request_id__startswith="kill-").count()
    assert stored_before_restart == 0

    second = WalGatewayProcess(wal_dir=tmp_path)
    try:
        second.wait_ready()
        wait_for_events(len(answered))
    finally:
        second.stop()

    per_request = Counter(
        AuditEvent.objects.filter(request_id__startswith="kill-").values_list("request_id", flat=True)
    )
    missing = [call_id for call_id in answered if per_request[f"kill-{call_id}"] == 0]
    duplicated = [request_id for request_id, count in per_request.items() if count > 1]
    assert missing == []
    assert duplicated == []
    events = AuditEvent.objects.filter(request_id__in=[f"kill-{call_id}" for call_id in answered])
    assert sorted(int(jsonrpc_id) for jsonrpc_id in events.values_list("jsonrpc_id", flat=True)) == sorted(
        answered
    )
    assert list(tmp_path.glob("*.wal")) == []  # drained and deleted
