"""The acceptance of SIEM streaming through a real gateway: a webhook that is down for a while
receives every event once it is back, and the proxy's calls are no slower while it is down.

The gateway runs as the embedded default (no broker), so its own process delivers to the sinks, on
a thread of its own, every 0.1 s here. The receiver is down for a full minute
(:data:`OUTAGE_SECONDS`); the sink's retry settings (0.1 s doubling to 0.5 s) make that minute span
many delivery attempts.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from typing import Any

import pytest

from audit.models import AuditEvent, SiemSinkState
from audit.siem.services import siem_sink_create, siem_sink_update
from tests.audit.siem_receivers import WebhookReceiver, make_certificates
from tests.conftest import Gateway, gateway_configured, issue_credential, mcp_client, run

OUTAGE_SECONDS = 60.0
CALLS_PER_PHASE = 15
SECRET = "siem-signing-secret-0123456789"


@pytest.fixture
def embedded_gateway(settings: Any, transactional_db: None) -> Iterator[Gateway]:
    """A gateway as the embedded default runs it: no broker, so it seals and delivers to SIEM itself."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    with gateway_configured(settings, SIEM_POLL_SECONDS="0.1") as server:
        yield server


async def timed_calls(url: str, token: str, count: int) -> list[float]:
    """Seconds each of ``count`` tools/call took, on one MCP session (set up outside the timing)."""
    timings = []
    async with mcp_client(url, token) as client:
        await client.call_tool("search", {"query": "warm-up"})
        for number in range(count):
            started = time.perf_counter()
            result = await client.call_tool("search", {"query": f"q{number}"})
            timings.append(time.perf_counter() - started)
            assert not result.is_error
    return timings


def state(sink: Any) -> SiemSinkState:
    return SiemSinkState.objects.get(pk=sink.pk)


def test_a_webhook_down_for_a_while_gets_every_event_once_back_and_calls_are_no_slower(
    embedded_gateway, tenant, target, tmp_path
):
    # given: a webhook sink whose receiver is not listening (down)
    credential = issue_credential(tenant, target, "POST /tools/search")
    receiver = WebhookReceiver(make_certificates(tmp_path), SECRET)
    sink = siem_sink_create(
        tenant=tenant,
        name="soc",
        kind="webhook",
        settings={
            "url": receiver.url,
            "ca_file": str(receiver.certificates.ca_file),
            "retry_initial_seconds": 0.1,
            "retry_max_seconds": 0.5,
            "timeout_seconds": 2.0,
        },
        secret=SECRET,
    )
    start_cursor = state(sink).cursor
    url = embedded_gateway.proxy_url(target.slug)

    # when: calls alternate between the sink switched off (no sink) and on (down), for the outage
    timings: dict[str, list[float]] = {"no sink": [], "sink down": []}
    started = time.monotonic()
    rounds = 0
    while rounds < 3 or time.monotonic() - started < OUTAGE_SECONDS:
        for phase in timings:
            siem_sink_update(sink=sink, enabled=phase == "sink down")
            timings[phase] += run(timed_calls(url, credential.token, CALLS_PER_PHASE))
        rounds += 1
    attempts = state(sink).failures
    assert receiver.events() == []

    # then: the proxy was no slower with the sink down ...
    without, down = statistics.median(timings["no sink"]), statistics.median(timings["sink down"])
    assert down <= without * 1.5 + 0.005, (
        f"median {down * 1000:.1f} ms with the sink down, {without * 1000:.1f} without"
    )
    # ... the outage spanned many delivery attempts ...
    assert attempts >= 10, f"only {attempts} delivery attempts during the outage"
    assert "cannot connect" in state(sink).last_error or "webhook" in state(sink).last_error

    # ... and once the receiver is back, every event written since the sink was made arrives
    receiver.start()
    try:
        embedded_gateway.flush_audit()
        expected = set(
            str(event_id)
            for event_id in AuditEvent.objects.filter(tenant=tenant, id__gt=start_cursor).values_list(
                "event_id", flat=True
            )
        )
        deadline = time.monotonic() + 60
        while not expected <= {event["event_id"] for event in receiver.events()}:
            assert time.monotonic() < deadline, (
                f"{len(expected - {e['event_id'] for e in receiver.events()})} missing"
            )
            time.sleep(0.1)
    finally:
        receiver.stop()
    calls = [event for event in receiver.events() if event["kind"] == "call"]
    assert len({event["event_id"] for event in calls}) >= 2 * rounds * (CALLS_PER_PHASE + 1)
    assert receiver.bad_signatures == 0
    assert state(sink).failures == 0
