"""Acceptance: 2,000 calls through two gateway processes while Celery beat, in a real worker process,
seals the trail: every event is sealed within two minutes of being written, and ``verify_audit`` finds
the trail intact.

The gateways have a broker, so they leave sealing to Celery (no embedded sealer loop); the worker runs
beat itself (``-B``) on tests/audit/beat_settings.py, which seals every two seconds instead of every
minute so the test does not wait for the minute. The agents are the ``mcp`` SDK's client on the
stateless protocol, several at once, each spreading its calls over both gateways.
"""

from __future__ import annotations

import asyncio
import io
import json
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

from django.core.management import CommandError, call_command
from django.db.models import F, Max

from audit.models import AuditEvent, AuditSeal
from tests.conftest import issue_credential, mcp_client, run
from tests.metering.processes import GatewayProcess, Process, process_env

CALLS, AGENTS = 2000, 10
SEAL_EVERY_SECONDS = 2.0
SEALED_WITHIN = timedelta(minutes=2)


class SealingWorker(Process):
    """``celery -A gateway worker -B``: beat and a worker in one process, on its own queue."""

    def __init__(self, *, redis_url: str, state_dir: Path) -> None:
        self.schedule = state_dir / "beat-schedule"  # beat's state file, not in the repository
        queue = f"audit-seal-test-{uuid.uuid4().hex}"
        celery = str(Path(sys.executable).with_name("celery"))
        super().__init__(
            [
                *[celery, "-A", "gateway", "worker", "-B", "--schedule", str(self.schedule)],
                *["--pool", "solo", "-Q", queue, "--loglevel", "WARNING"],
                *["--without-heartbeat", "--without-gossip", "--without-mingle"],
            ],
            process_env(
                redis_url=redis_url,
                CELERY_BROKER_URL=redis_url,
                DJANGO_SETTINGS_MODULE="tests.audit.beat_settings",
                AUDIT_TEST_QUEUE=queue,
                AUDIT_TEST_SEAL_EVERY_SECONDS=str(SEAL_EVERY_SECONDS),
            ),
        )


async def agents(urls: list[str], token: str) -> list[bool]:
    """``AGENTS`` SDK clients per gateway at once, ``CALLS`` tools/call in all; True per call that
    returned the tool's result."""

    async def agent(url: str, calls: int) -> list[bool]:
        async with mcp_client(url, token, mode="2026-07-28") as client:
            results = [await client.call_tool("search", {"query": "q"}) for _ in range(calls)]
        return [not result.is_error for result in results]

    per_agent = CALLS // (AGENTS * len(urls))
    runs = [agent(url, per_agent) for url in urls for _ in range(AGENTS)]
    return [ok for results in await asyncio.gather(*runs) for ok in results]


def tool_calls_written_and_events_unsealed() -> tuple[int, int]:
    """(the tools/call events in the database, the events of any kind not yet sealed)."""
    tool_calls = AuditEvent.objects.filter(kind=AuditEvent.Kind.CALL, jsonrpc_method="tools/call")
    return tool_calls.count(), AuditEvent.objects.filter(seal__isnull=True).count()


def verify_audit() -> tuple[bool, dict]:
    out = io.StringIO()
    try:
        call_command("verify_audit", "--json", stdout=out)
    except CommandError:
        return False, json.loads(out.getvalue() or "{}")
    return True, json.loads(out.getvalue())


def test_2000_calls_through_two_gateways_are_all_sealed_by_celery_beat_and_verify(
    tenant, target, redis_url, tmp_path
):
    issued = issue_credential(tenant, target, "POST /tools/search")
    gateways = [GatewayProcess(redis_url=redis_url) for _ in range(2)]
    worker = SealingWorker(redis_url=redis_url, state_dir=tmp_path)
    try:
        for gateway in gateways:
            gateway.wait_ready()
        started = time.monotonic()
        results = run(agents([gateway.proxy_url("docs") for gateway in gateways], issued.token))
        answered = time.monotonic()
        # when every call has been answered, the events reach the database and are sealed
        deadline = time.monotonic() + SEALED_WITHIN.total_seconds()
        while (progress := tool_calls_written_and_events_unsealed()) != (CALLS, 0):
            assert worker.popen.poll() is None, worker.output()
            assert time.monotonic() < deadline, f"(written, unsealed) = {progress}: {worker.output()}"
            time.sleep(0.5)
        print(
            f"{CALLS} calls in {answered - started:.1f} s, all sealed {time.monotonic() - answered:.1f} s later"
        )
    finally:
        worker.stop()
        for gateway in gateways:
            gateway.stop()

    assert results == [True] * CALLS
    tool_calls = AuditEvent.objects.filter(kind=AuditEvent.Kind.CALL, jsonrpc_method="tools/call")
    assert tool_calls.filter(decision="allowed", tool="search").count() == CALLS
    lag = AuditEvent.objects.aggregate(lag=Max(F("seal__created_at") - F("created_at")))["lag"]
    assert lag < SEALED_WITHIN, f"an event waited {lag} for its seal"
    assert (
        AuditSeal.objects.filter(tenant=tenant).count() > 1
    )  # sealed as the calls came, not once at the end
    passed, report = verify_audit()
    assert passed, report
