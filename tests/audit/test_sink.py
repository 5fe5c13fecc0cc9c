"""The audit sink: events on disk first, then in the database, whatever the database does."""

from __future__ import annotations

import logging
import time

from django.db import OperationalError

import audit.writer as writer_module
from audit.models import AuditEvent
from tests.audit.helpers import eventually, record, request_ids, wal_lines, with_sink


def test_submitted_events_are_in_the_database_after_flush(transactional_db, tmp_path):
    async def scenario(sink) -> None:
        for index in range(250):
            sink.submit(record(f"r{index}"))
        await sink.flush()
        assert sink.status()["lag_events"] == 0

    with_sink(tmp_path, scenario)
    assert AuditEvent.objects.count() == 250
    assert list(tmp_path.glob("*.wal")) == []  # drained segments are deleted at shutdown


def test_submit_never_waits_for_the_database(transactional_db, tmp_path, monkeypatch):
    def slow_write(records):
        time.sleep(0.5)
        raise OperationalError("database is slow and then down")

    monkeypatch.setattr(writer_module, "write_records", slow_write)

    async def scenario(sink) -> float:
        started = time.process_time()
        for index in range(1000):
            sink.submit(record(f"r{index}"))
        return time.process_time() - started

    assert with_sink(tmp_path, scenario, drain_seconds=0.5) < 0.5
    assert wal_lines(tmp_path) == 1000  # kept on disk for the next start


def test_events_wait_on_disk_while_the_database_is_down_and_are_written_once_it_is_back(
    transactional_db, tmp_path, monkeypatch
):
    real_write = writer_module.write_records
    attempts: list[int] = []

    def failing_write(records):
        attempts.append(len(records))
        raise OperationalError("database is down")

    async def scenario(sink) -> None:
        monkeypatch.setattr(writer_module, "write_records", failing_write)
        sink.submit(record("during-outage"))
        await eventually(lambda: len(attempts) >= 2)
        assert sink.status()["database"] == "unavailable"
        assert sink.status()["lag_events"] == 1
        monkeypatch.setattr(writer_module, "write_records", real_write)
        sink.submit(record("after-outage"))
        await sink.flush()
        assert sink.status()["database"] == "ok"

    with_sink(tmp_path, scenario)
    assert request_ids() == ["after-outage", "during-outage"]


def test_a_writer_crash_is_logged_and_the_writer_restarts(transactional_db, tmp_path, monkeypatch, caplog):
    real_write = writer_module.write_records
    crashes: list[int] = []

    def crash_once(records):
        if not crashes:
            crashes.append(1)
            raise RuntimeError("bug in the writer")
        return real_write(records)

    monkeypatch.setattr(writer_module, "write_records", crash_once)

    async def scenario(sink) -> int:
        sink.submit(record("before-crash"))
        await sink.flush()
        sink.submit(record("after-crash"))
        await sink.flush()
        return int(sink.status()["writer_restarts"])

    with caplog.at_level(logging.ERROR, logger="audit.sink"):
        assert with_sink(tmp_path, scenario) == 1
    assert "audit writer failed; restarting" in caplog.text
    assert request_ids() == ["after-crash", "before-crash"]


def test_shutdown_with_the_database_down_does_not_hang_and_keeps_the_events(
    transactional_db, tmp_path, monkeypatch
):
    def down(records):
        raise OperationalError("connection refused")

    monkeypatch.setattr(writer_module, "write_records", down)

    async def scenario(sink) -> None:
        for index in range(5):
            sink.submit(record(f"kept-{index}"))

    started = time.monotonic()
    with_sink(tmp_path, scenario, drain_seconds=1.0)
    assert time.monotonic() - started < 10
    assert wal_lines(tmp_path) == 5
    assert AuditEvent.objects.count() == 0

    # the next start drains what the last one left
    monkeypatch.undo()

    async def next_start(sink) -> None:
        await sink.flush()

    with_sink(tmp_path, next_start)
    assert request_ids() == [f"kept-{index}" for index in range(5)]
    assert list(tmp_path.glob("*.wal")) == []


def test_lag_past_the_threshold_is_logged_and_so_is_its_recovery(
    transactional_db, tmp_path, monkeypatch, caplog
):
    real_write = writer_module.write_records
    down = [True]

    def maybe_down(records):
        if down[0]:
            raise OperationalError("database is down")
        return real_write(records)

    monkeypatch.setattr(writer_module, "write_records", maybe_down)

    async def scenario(sink) -> None:
        for index in range(12):
            sink.submit(record(f"r{index}"))
        assert sink.status()["lag_events"] == 12
        down[0] = False
        await sink.flush()

    with caplog.at_level(logging.WARNING, logger="audit.sink"):
        with_sink(tmp_path, scenario, lag_warn_events=10)
    assert "audit lag: 11 event(s) on disk not yet in the database" in caplog.text
    assert "audit lag recovered" in caplog.text
    assert AuditEvent.objects.count() == 12


def test_segments_rotate_by_size_and_each_is_deleted_once_drained(transactional_db, tmp_path):
    async def scenario(sink) -> int:
        for index in range(200):
            sink.submit(record(f"r{index}", path="/mcp/docs/" + "x" * 200))
        segments = len(list(tmp_path.glob("*.wal")))
        await sink.flush()
        await eventually(lambda: len(list(tmp_path.glob("*.wal"))) == 1)  # only the live one is left
        return segments

    assert with_sink(tmp_path, scenario, segment_bytes=8 * 1024) > 3
    assert AuditEvent.objects.count() == 200


def test_appended_events_are_fsynced_by_the_group_fsync_not_per_call(transactional_db, tmp_path, monkeypatch):
    import audit.wal as wal_module

    synced: list[int] = []
    real_fsync = wal_module.os.fsync

    def counting_fsync(fd):
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(wal_module.os, "fsync", counting_fsync)

    async def scenario(sink) -> None:
        await eventually(lambda: len(synced) >= 1, timeout=10)  # the new segment's directory entry
        synced.clear()
        for index in range(100):
            sink.submit(record(f"r{index}"))
        assert synced == []  # no fsync per call
        await eventually(lambda: len(synced) >= 1, timeout=10)

    with_sink(tmp_path, scenario, fsync_seconds=0.05)
