"""Usage rollups: recomputed whole per period, so a second run or a run after a crash changes nothing."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from audit.models import AuditEvent
from metering import services
from metering.models import RollupCursor, UsageRollup
from metering.services import meter_create, usage_rollup_run
from tests.conftest import issue_credential
from tests.metering.conftest import post_call
from tests.metering.processes import CeleryWorker

NOW = datetime(2026, 11, 25, 10, 30, tzinfo=UTC)
TOKENS = "$.result.structuredContent.usage.total_tokens"


def audit_event(tenant, target, credential, *, at: datetime, tool: str = "search", **fields) -> AuditEvent:
    values = {
        "decision": "allowed",
        "status_code": 200,
        "latency_ms": 10.0,
        "http_method": "POST",
        "path": f"/mcp/{target.slug}/",
        "request_id": uuid.uuid4().hex,
        **fields,
    }
    return AuditEvent.objects.create(
        created_at=at, tenant=tenant, target=target, credential=credential, tool=tool, **values
    )


def rollup_rows() -> list[tuple]:
    return list(
        UsageRollup.objects.order_by("period", "period_start", "credential_id", "tool").values_list(
            "period",
            "period_start",
            "tenant_id",
            "target_id",
            "credential_id",
            "tool",
            "calls",
            "denials",
            "rate_limited",
            "errors",
            "response_values",
            "latency_p50_ms",
            "latency_p95_ms",
        )
    )


@pytest.fixture
def events(tenant, target):
    agent = issue_credential(tenant, target, "POST /tools/search", name="agent").credential
    other = issue_credential(tenant, target, "POST /tools/search", name="other").credential
    nine, ten = NOW.replace(hour=9, minute=15), NOW.replace(minute=5)
    for latency in range(1, 21):  # 20 calls at 09:15, latencies 1..20 ms, 400 tokens each
        audit_event(tenant, target, agent, at=nine, latency_ms=float(latency), response_values={TOKENS: 400})
    audit_event(tenant, target, agent, at=ten, decision="denied", status_code=429, latency_ms=1.0)
    audit_event(tenant, target, agent, at=ten, decision="denied", status_code=400, tool="delete_all")
    audit_event(tenant, target, other, at=ten, decision="error", status_code=502, latency_ms=30.0)
    audit_event(tenant, target, None, at=ten, decision="denied", status_code=401, tool="")
    return agent, other


def test_hourly_and_daily_rows_per_tenant_target_credential_and_tool(events, tenant, target):
    agent, other = events
    usage_rollup_run(now=NOW)
    hourly = {
        (r.period_start.hour, r.credential_id, r.tool): r for r in UsageRollup.objects.filter(period="hour")
    }
    nine = hourly[(9, agent.pk, "search")]
    assert (nine.calls, nine.denials, nine.rate_limited, nine.errors) == (20, 0, 0, 0)
    assert nine.response_values == {TOKENS: 8000}
    assert (nine.latency_p50_ms, nine.latency_p95_ms) == (10.0, 19.0)
    assert (hourly[(10, agent.pk, "search")].denials, hourly[(10, agent.pk, "search")].rate_limited) == (1, 1)
    assert hourly[(10, agent.pk, "delete_all")].rate_limited == 0
    assert hourly[(10, other.pk, "search")].errors == 1
    assert hourly[(10, None, "")].denials == 1
    [day] = UsageRollup.objects.filter(period="day", credential=agent, tool="search")
    assert (day.period_start, day.calls, day.rate_limited) == (NOW.replace(hour=0, minute=0), 21, 1)
    assert day.response_values == {TOKENS: 8000}


def test_running_the_rollup_twice_gives_identical_rows(events):
    usage_rollup_run(now=NOW)
    first = rollup_rows()
    usage_rollup_run(now=NOW)
    assert rollup_rows() == first
    assert len(first) == 9  # hourly: 1 group at 09:00 and 4 at 10:00; daily: the same 4 groups


def test_a_crash_halfway_changes_nothing_and_the_next_run_completes(events, tenant, target, monkeypatch):
    agent, _ = events
    usage_rollup_run(now=NOW)
    before, cursor = rollup_rows(), RollupCursor.objects.get().last_event_id
    audit_event(tenant, target, agent, at=NOW.replace(hour=9, minute=50), latency_ms=99.0)
    recompute, calls = services._recompute, []

    def crash_on_second_period(*args):
        calls.append(args)
        if len(calls) == 2:
            raise RuntimeError("worker killed")
        return recompute(*args)

    monkeypatch.setattr(services, "_recompute", crash_on_second_period)
    with pytest.raises(RuntimeError):
        usage_rollup_run(now=NOW)
    assert rollup_rows() == before and RollupCursor.objects.get().last_event_id == cursor

    monkeypatch.setattr(services, "_recompute", recompute)
    usage_rollup_run(now=NOW)
    after = rollup_rows()
    usage_rollup_run(now=NOW)
    assert rollup_rows() == after
    assert (
        UsageRollup.objects.get(
            period="hour", period_start=NOW.replace(hour=9, minute=0), credential=agent
        ).calls
        == 21
    )


def test_events_arriving_late_for_an_old_hour_are_rolled_up(events, tenant, target):
    agent, _ = events
    usage_rollup_run(now=NOW)
    long_ago = NOW - timedelta(hours=5)  # e.g. drained from the audit spool after an outage
    audit_event(tenant, target, agent, at=long_ago)
    usage_rollup_run(now=NOW)
    [late] = UsageRollup.objects.filter(period="hour", period_start=long_ago.replace(minute=0))
    assert late.calls == 1


def test_a_real_celery_worker_rolls_up_proxied_calls(gateway, tenant, target, redis_url):
    from metering.tasks import rollup_usage

    issued = issue_credential(tenant, target, "POST /tools/search")
    meter_create(tenant=tenant, credential=issued.credential, kind="request_count", window="minute", limit=2)
    statuses = [post_call(gateway.proxy_url("docs"), issued.token).status_code for _ in range(3)]
    gateway.flush_audit()
    queue = f"metering-test-{uuid.uuid4().hex}"  # its own queue: no other worker on this broker takes it
    worker = CeleryWorker(redis_url=redis_url, queue=queue)
    try:
        rollup_usage.apply_async(queue=queue)
        deadline = time.monotonic() + 60
        while not UsageRollup.objects.filter(period="hour").exists():
            assert worker.popen.poll() is None, worker.output()
            assert time.monotonic() < deadline, f"the worker did not roll up: {worker.output()}"
            time.sleep(0.2)
    finally:
        worker.stop()
    assert statuses == [200, 200, 429]
    [row] = UsageRollup.objects.filter(period="hour", credential=issued.credential)
    assert (row.calls, row.denials, row.rate_limited, row.tool) == (3, 1, 1, "search")
    assert RollupCursor.objects.get().last_event_id == AuditEvent.objects.order_by("-id").first().pk


def test_since_recomputes_old_hours_and_drops_rows_whose_events_are_gone(events, tenant, target):
    usage_rollup_run(now=NOW)
    AuditEvent.objects.filter(created_at__hour=9).delete()  # e.g. an audit retention purge
    usage_rollup_run(now=NOW + timedelta(hours=3))  # 09:00 is no longer the current or previous hour
    assert UsageRollup.objects.filter(period="hour", period_start=NOW.replace(hour=9, minute=0)).exists()
    usage_rollup_run(now=NOW + timedelta(hours=3), since=NOW.replace(hour=0))
    assert not UsageRollup.objects.filter(period="hour", period_start=NOW.replace(hour=9, minute=0)).exists()
    [day] = UsageRollup.objects.filter(period="day", credential=events[0], tool="search")
    assert day.calls == 1


def test_without_a_broker_the_gateway_keeps_rollups_current_itself(events, settings):
    from metering.runtime import keep_rollups_current, rollups_in_process

    def rolled_up() -> bool:
        try:
            return UsageRollup.objects.filter(period="hour").exists()
        finally:
            connection.close()

    async def run_briefly() -> None:
        task = asyncio.get_running_loop().create_task(keep_rollups_current(0.05))
        deadline = time.monotonic() + 10
        while not await asyncio.to_thread(rolled_up) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    settings.CELERY_TASK_ALWAYS_EAGER = True  # what settings.py says when there is no broker
    assert rollups_in_process()
    asyncio.run(run_briefly())
    assert UsageRollup.objects.filter(period="hour").exists()


def test_stopping_the_in_process_rollup_loop_waits_for_the_run_in_flight(monkeypatch):
    # A rollup still writing after the loop was stopped raced the shutdown (and a test's table flush).
    from metering.runtime import keep_rollups_current

    state = {"started": False, "finished": False}

    def slow_rollup() -> None:
        state["started"] = True
        time.sleep(0.5)
        state["finished"] = True

    monkeypatch.setattr(services, "usage_rollup_run", slow_rollup)

    async def start_then_stop() -> None:
        task = asyncio.get_running_loop().create_task(keep_rollups_current(0.01))
        while not state["started"]:
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(start_then_stop())
    assert state["finished"]
