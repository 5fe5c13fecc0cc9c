"""The write-ahead file: dead processes' segments drained, cut lines skipped, bad lines quarantined once."""

from __future__ import annotations

import fcntl
import logging
import os
import uuid
from pathlib import Path

import orjson

from audit.models import AuditEvent
from tests.audit.helpers import record, request_ids, with_sink


def write_dead_segment(
    wal_dir: Path, lines: list[bytes], name: str = "00000000000000000001-1-dead.wal"
) -> Path:
    """A segment as a killed process leaves it: nobody holds its lock."""
    wal_dir.mkdir(parents=True, exist_ok=True)
    path = wal_dir / name
    path.write_bytes(b"".join(lines))
    return path


def line(request_id: str) -> bytes:
    return orjson.dumps(record(request_id, event_id=uuid.uuid4().hex)) + b"\n"


async def drain(sink) -> None:
    await sink.flush()


def test_a_dead_process_segment_is_drained_and_deleted(transactional_db, tmp_path):
    segment = write_dead_segment(tmp_path, [line("a"), line("b")])
    with_sink(tmp_path, drain)
    assert request_ids() == ["a", "b"]
    assert not segment.exists()


def test_a_segment_locked_by_a_live_process_is_left_alone(transactional_db, tmp_path):
    segment = write_dead_segment(tmp_path, [line("owned-elsewhere")])
    fd = os.open(segment, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another open file description: as another process's lock
    try:
        with_sink(tmp_path, drain)
        assert AuditEvent.objects.count() == 0
        assert segment.exists()
    finally:
        os.close(fd)


def test_a_cut_short_last_line_of_a_dead_process_is_skipped_and_logged(transactional_db, tmp_path, caplog):
    cut = line("never-answered")[:40]
    write_dead_segment(tmp_path, [line("answered"), cut])
    with caplog.at_level(logging.WARNING, logger="audit.wal"):
        with_sink(tmp_path, drain)
    assert request_ids() == ["answered"]
    assert "skipped a cut-short last line (40 bytes)" in caplog.text
    assert list(tmp_path.glob("*.wal")) == []


def test_a_corrupt_line_is_quarantined_once_and_never_read_again(transactional_db, tmp_path, caplog):
    write_dead_segment(tmp_path, [line("before"), b"{not json\x00\n", b"[1, 2]\n", line("after")])
    with caplog.at_level(logging.ERROR, logger="audit.wal"):
        with_sink(tmp_path, drain)
        with_sink(tmp_path, drain)  # a second start finds nothing to re-read
    assert request_ids() == ["after", "before"]
    [quarantined] = (tmp_path / "quarantine").iterdir()
    assert quarantined.read_bytes() == b"{not json\x00\n[1, 2]\n"
    assert caplog.text.count("unreadable line(s)") == 1
    assert list(tmp_path.glob("*.wal")) == []


def test_a_segment_drained_again_after_a_crash_stores_no_duplicate(transactional_db, tmp_path):
    lines = [line(f"r{index}") for index in range(10)]
    write_dead_segment(tmp_path, lines, name="00000000000000000001-1-a.wal")
    with_sink(tmp_path, drain)
    # the same events found again (as if the process died before deleting the drained segment)
    write_dead_segment(tmp_path, lines, name="00000000000000000002-1-b.wal")
    with_sink(tmp_path, drain)
    assert AuditEvent.objects.count() == 10


def test_a_spool_file_of_the_previous_version_is_drained_once(transactional_db, tmp_path):
    old = orjson.dumps(record("spooled-before-upgrade")) + b"\n"  # no event id back then
    (tmp_path / "0a1b2c.jsonl").write_bytes(old)
    with_sink(tmp_path, drain)
    (tmp_path / "0a1b2c.jsonl").write_bytes(old)  # as if the drain had been cut short before the delete
    with_sink(tmp_path, drain)
    assert request_ids() == ["spooled-before-upgrade"]
    assert list(tmp_path.glob("*.jsonl")) == []
