"""An accepted call is audited even when the database cannot take the event at that moment."""

from __future__ import annotations

import asyncio

from django.utils import timezone

import audit.sink as sink_module
from audit.models import AuditEvent
from audit.sink import AuditSink


def _record(request_id: str) -> dict:
    return {
        "created_at": timezone.now(),
        "request_id": request_id,
        "http_method": "POST",
        "path": "/mcp/docs/",
        "decision": "allowed",
        "status_code": 200,
        "latency_ms": 1.0,
    }


def test_events_are_spooled_when_the_database_fails_and_written_once_it_is_back(
    transactional_db, tmp_path, monkeypatch
):
    real_write = sink_module.write_records

    def failing_write(records):
        raise ConnectionError("database is down")

    async def scenario() -> None:
        sink = AuditSink(batch_size=10, spool_dir=str(tmp_path))
        sink.start()
        monkeypatch.setattr(sink_module, "write_records", failing_write)
        sink.submit(_record("during-outage"))
        await sink.flush()
        assert len(list(tmp_path.glob("*.jsonl"))) == 1
        monkeypatch.setattr(sink_module, "write_records", real_write)
        sink.submit(_record("after-outage"))
        await sink.flush()
        await sink.aclose()

    asyncio.run(scenario())
    assert sorted(AuditEvent.objects.values_list("request_id", flat=True)) == [
        "after-outage",
        "during-outage",
    ]
    assert list(tmp_path.glob("*.jsonl")) == []


def test_submit_never_waits_for_the_database(transactional_db, tmp_path):
    async def scenario() -> float:
        sink = AuditSink(batch_size=500, spool_dir=str(tmp_path))
        sink.start()
        loop = asyncio.get_running_loop()
        started = loop.time()
        for index in range(1000):
            sink.submit(_record(f"r{index}"))
        elapsed = loop.time() - started
        await sink.aclose()
        return elapsed

    assert asyncio.run(scenario()) < 0.5
    assert AuditEvent.objects.count() == 1000
