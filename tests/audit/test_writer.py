"""The database writer: idempotent by event id, and one bad row never stops or loses a batch."""

from __future__ import annotations

import uuid

from django.db import transaction

import audit.writer as writer_module
from audit.models import AuditEvent
from audit.writer import write_records
from tests.audit.helpers import record


def test_writing_the_same_events_twice_stores_each_once(transactional_db):
    records = [record(f"r{index}", event_id=uuid.uuid4().hex) for index in range(20)]
    first = write_records(records)
    again = write_records(records)
    assert (first.inserted, first.duplicates) == (20, 0)
    assert (again.inserted, again.duplicates) == (0, 20)
    assert AuditEvent.objects.count() == 20


def test_poisoned_values_are_written_sanitised(transactional_db):
    write_records(
        [
            record(
                "poisoned",
                path="/mcp/docs/\x00" + "x" * 3000,
                request_bytes=2**64 - 1,
                response_bytes=2**63,
                client_ip="999.1.1.1",
                meter_notes=["\x00"],
            )
        ]
    )
    event = AuditEvent.objects.get()
    assert "\x00" not in event.path and len(event.path) == 2000
    assert event.request_bytes == event.response_bytes == 2**63 - 1
    assert event.client_ip is None
    assert event.meter_notes == [""]


def test_a_row_the_database_refuses_is_isolated_and_stored_with_the_reason(transactional_db, monkeypatch):
    # given a gap in sanitising: a value the database (or its driver) refuses reaches the insert
    monkeypatch.setattr(
        writer_module, "sanitise_record", lambda r: {**r, "event_id": uuid.UUID(r["event_id"])}
    )
    records = [record(f"good-{index}", event_id=uuid.uuid4().hex) for index in range(9)]
    records.insert(4, record("bad", event_id=uuid.uuid4().hex, request_bytes=2**64, reason="allowed"))

    report = write_records(records)

    assert (report.inserted, report.repaired) == (9, 1)
    bad = AuditEvent.objects.get(request_id="bad")
    assert bad.request_bytes == 0
    assert bad.reason.startswith("audit: request_bytes unwritable (")
    assert bad.reason.endswith("; allowed")
    assert AuditEvent.objects.filter(request_id__startswith="good-").count() == 9


def test_an_audit_event_keeps_the_credential_name_and_prefix_given(transactional_db):
    write_records(
        [record("named", credential_id=999_999, credential_name="ci-bot", credential_prefix="gw_abc")]
    )
    event = AuditEvent.objects.get()
    assert (event.credential_id, event.credential_name, event.credential_prefix) == (
        999_999,
        "ci-bot",
        "gw_abc",
    )


def test_tabs_newlines_and_backslashes_are_stored_exactly(transactional_db):
    odd = "/mcp/docs/a\tb\nc\\d\\N\r\u2028é😀"
    write_records([record("odd", path=odd, meter_notes=["tab\there", "back\\slash"])])
    event = AuditEvent.objects.get()
    assert event.path == odd
    assert event.meter_notes == ["tab\there", "back\\slash"]


def test_writing_inside_a_transaction_is_idempotent_and_sanitised_too(transactional_db):
    records = [record("in-tx", event_id=uuid.uuid4().hex, request_bytes=2**64 - 1, path="/\x00")]
    with transaction.atomic():
        write_records(records)
        write_records(records)
    event = AuditEvent.objects.get()
    assert (event.request_bytes, event.path) == (2**63 - 1, "/")
