"""A large export is streamed: 100,000 events are written in memory that does not grow with them."""

from __future__ import annotations

import time
import tracemalloc
from datetime import UTC, datetime, timedelta

from audit.exports.services import audit_export_write
from audit.models import AuditEvent, AuditSeal
from audit.services import audit_seal_run
from tests.audit.bulk_events import bulk_events

START = datetime(2026, 5, 1, tzinfo=UTC)
ROWS = 100_000


def test_a_csv_export_of_100000_events_runs_in_bounded_memory(transactional_db, tenant, tmp_path):
    # given 100,000 events of the tenant in the period, most sealed (the sealer runs every minute)
    bulk_events(tenant_id=tenant.id, count=ROWS, start=START)
    audit_seal_run(max_events=10_000)
    bulk_events(tenant_id=tenant.id, count=2_000, start=START + timedelta(hours=1))
    path = tmp_path / "big.csv"

    # when they are exported, with Python's allocations traced
    started = time.monotonic()
    tracemalloc.start()
    try:
        result = audit_export_write(
            tenant=tenant, since=START, until=START + timedelta(days=1), format="csv", output=path
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"exported {result.events} events in {time.monotonic() - started:.1f} s, peak {peak / 1e6:.1f} MB")

    # then every event is in the file, and the peak is a small fraction of the data, not all of it
    size = path.stat().st_size
    events = ROWS + 2_000
    assert result.events == events == AuditEvent.objects.filter(tenant=tenant, kind="call").count()
    assert path.read_bytes().count(b"\r\n") == events + 1
    assert size > 20_000_000
    assert peak < min(size / 4, 8_000_000), f"peak {peak / 1e6:.1f} MB for {size / 1e6:.1f} MB of CSV"
    # the newest not sealed yet: listed, never silently
    assert (result.seals, result.unsealed) == (AuditSeal.objects.filter(tenant=tenant).count(), 2_000)
