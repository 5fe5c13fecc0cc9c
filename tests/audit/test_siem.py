"""SIEM sinks: every event of a tenant reaches its syslog collector, webhook or file, at least once,
with its event id; a sink that fails waits and retries without holding up the others."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from audit.models import AuditEvent, SiemSink, SiemSinkState
from audit.siem.services import siem_deliver_run, siem_sink_create, siem_sink_deliver
from audit.writer import write_records
from gateway.conf import gateway_settings
from gateway.egress import egress_policy
from gateway.services import tenant_create
from tests.audit.helpers import record
from tests.audit.siem_receivers import (
    SyslogCollector,
    WebhookReceiver,
    free_port,
    make_certificates,
)

SECRET = "siem-signing-secret-0123456789"


@pytest.fixture
def siem_dir(settings: Any, tmp_path: Path) -> Path:
    """GATEWAY_SIEM_FILE_DIR in a temporary directory."""
    directory = tmp_path / "siem"
    settings.GATEWAY = {**settings.GATEWAY, "SIEM_FILE_DIR": str(directory)}
    gateway_settings.cache_clear()
    yield directory
    gateway_settings.cache_clear()


@pytest.fixture
def certificates(tmp_path: Path) -> Any:
    return make_certificates(tmp_path)


def write_events(tenant: Any, count: int, prefix: str = "e", **fields: Any) -> list[str]:
    """Store ``count`` call events of ``tenant``; their event ids, as delivered records name them."""
    ids = [str(uuid.uuid4()) for _ in range(count)]
    write_records(
        [record(f"{prefix}-{n}", event_id=ids[n], tenant_id=tenant.pk, **fields) for n in range(count)]
    )
    return ids


def file_sink(tenant: Any, name: str = "file", **settings: Any) -> SiemSink:
    return siem_sink_create(
        tenant=tenant, name=name, kind="file", settings={"path": f"{name}.jsonl", **settings}
    )


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def state(sink: SiemSink) -> SiemSinkState:
    return SiemSinkState.objects.get(pk=sink.pk)


# --- what is delivered ---------------------------------------------------------------------------


def test_a_file_sink_receives_each_event_of_its_tenant_once_as_json_lines(tenant, siem_dir):
    # given
    other = tenant_create(name="other")
    sink = file_sink(tenant)
    mine = write_events(tenant, 5, tool="search")
    write_events(other, 3)
    # when
    report = siem_deliver_run()
    siem_deliver_run()
    # then
    received = lines(siem_dir / "file.jsonl")
    assert [event["event_id"] for event in received if event["kind"] == "call"] == mine
    assert all(event["tenant_name"] == "acme" and event["tenant_id"] == tenant.pk for event in received)
    assert received[0]["tool"] == "search"
    assert report.delivered == len(received)
    assert state(sink).cursor == AuditEvent.objects.order_by("-id").first().id
    assert state(sink).backlog == 0


def test_a_new_sink_starts_with_the_next_event_unless_asked_to_send_from_the_start(tenant, siem_dir):
    old = write_events(tenant, 2, "old")
    new_only = file_sink(tenant, "new-only")
    everything = siem_sink_create(
        tenant=tenant, name="all", kind="file", settings={"path": "all.jsonl"}, from_start=True
    )
    new = write_events(tenant, 2, "new")

    siem_deliver_run()

    assert [e["event_id"] for e in lines(siem_dir / "new-only.jsonl") if e["kind"] == "call"] == new
    assert [e["event_id"] for e in lines(siem_dir / "all.jsonl") if e["kind"] == "call"] == old + new
    assert new_only.pk != everything.pk


def test_an_event_committed_late_below_the_cursor_is_still_delivered(tenant, siem_dir):
    # given: ids 1..N are given at insert; the event with the middle id commits after later ones
    sink = file_sink(tenant)
    first = write_events(tenant, 1, "first")
    late_id = AuditEvent.objects.order_by("-id").first().id + 1
    after = write_events(tenant, 1, "after")  # takes late_id (the sequence moves on) ...
    AuditEvent.objects.filter(event_id=after[0]).update(id=late_id + 1)  # ... now it sits above a hole
    siem_deliver_run()
    assert state(sink).holes and state(sink).cursor == late_id + 1
    # when the late transaction commits into the hole
    late = str(uuid.uuid4())
    write_records([record("late", event_id=late, tenant_id=tenant.pk)])
    AuditEvent.objects.filter(event_id=late).update(id=late_id)
    siem_deliver_run()
    # then
    delivered = [e["event_id"] for e in lines(siem_dir / "file.jsonl") if e["kind"] == "call"]
    assert delivered == first + after + [late]
    assert not any(low <= late_id <= high for low, high, _ in state(sink).holes)


def test_change_log_entries_are_streamed_with_the_calls(tenant, siem_dir):
    sink = file_sink(tenant)
    from gateway.services import target_create

    target_create(tenant=tenant, slug="docs", upstream_url="http://127.0.0.1:9/mcp")
    siem_deliver_run()

    changes = [e for e in lines(siem_dir / "file.jsonl") if e["kind"] == "change"]
    assert [c["details"]["object_type"] for c in changes] == ["target"]
    assert changes[0]["target_name"] == "docs"
    assert sink.pk


def test_a_file_is_rotated_past_its_size_and_never_written_through_a_symlink(tenant, siem_dir):
    file_sink(tenant, max_bytes=2000, backups=2)
    for round_ in range(4):
        write_events(tenant, 3, f"r{round_}")
        siem_deliver_run()
    assert (siem_dir / "file.jsonl.1").exists() and (siem_dir / "file.jsonl.2").exists()
    assert not (siem_dir / "file.jsonl.3").exists()
    assert all(p.stat().st_size <= 2000 for p in siem_dir.glob("file.jsonl*"))


def test_a_file_path_outside_the_siem_directory_is_refused(tenant, siem_dir):
    for path in ("../escape.jsonl", "/etc/passwd", ""):
        with pytest.raises(ValidationError, match="inside GATEWAY_SIEM_FILE_DIR"):
            siem_sink_create(tenant=tenant, name="bad", kind="file", settings={"path": path})


def test_unknown_or_out_of_range_settings_are_named(tenant, siem_dir):
    with pytest.raises(ValidationError) as error:
        siem_sink_create(
            tenant=tenant,
            name="bad",
            kind="file",
            settings={"path": "a", "batch_sise": 3, "timeout_seconds": 0},
        )
    assert "batch_sise" in str(error.value)


# --- syslog ------------------------------------------------------------------------------------


@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
def test_syslog_gets_rfc5424_messages_octet_counted(tenant, certificates, tls):
    collector = SyslogCollector(certificates if tls else None).start()
    try:
        settings = {"host": "127.0.0.1", "port": collector.port, "tls": tls, "facility": 13}
        if tls:
            settings["ca_file"] = str(certificates.ca_file)
        siem_sink_create(tenant=tenant, name="syslog", kind="syslog", settings=settings)
        ids = write_events(tenant, 3, decision="denied")
        report = siem_deliver_run()
    finally:
        collector.stop()

    assert report.failed == 0, report.errors
    calls = [m for m in collector.messages if b" call - " in m]
    assert len(calls) == 3
    header, _, _body = calls[0].partition(b" - \xef\xbb\xbf")
    pri_version, timestamp, _host, app, _pid, msgid = header.decode().split(" ")
    assert (pri_version, app, msgid) == ("<108>1", "mcp-gateway", "call")  # 13 * 8 + 4 (warning), version 1
    assert timestamp.endswith("+00:00")
    assert [json.loads(m.partition(b"\xef\xbb\xbf")[2])["event_id"] for m in calls] == ids


def test_a_syslog_collector_with_a_certificate_from_another_ca_gets_nothing(tenant, certificates, tmp_path):
    (tmp_path / "other").mkdir()
    other = make_certificates(tmp_path / "other")
    collector = SyslogCollector(certificates).start()
    try:
        sink = siem_sink_create(
            tenant=tenant,
            name="syslog",
            kind="syslog",
            settings={"host": "127.0.0.1", "port": collector.port, "ca_file": str(other.ca_file)},
        )
        write_events(tenant, 1)
        siem_deliver_run()
    finally:
        collector.stop()
    assert collector.messages == []
    assert "certificate" in state(sink).last_error
    assert state(sink).cursor < AuditEvent.objects.order_by("-id").first().id


# --- webhook -----------------------------------------------------------------------------------


def webhook_sink(tenant: Any, receiver: WebhookReceiver, **settings: Any) -> SiemSink:
    return siem_sink_create(
        tenant=tenant,
        name="hook",
        kind="webhook",
        settings={"url": receiver.url, "ca_file": str(receiver.certificates.ca_file), **settings},
        secret=receiver.secret,
    )


def test_a_webhook_gets_signed_batches_no_larger_than_the_batch_size(tenant, certificates):
    receiver = WebhookReceiver(certificates, SECRET).start()
    try:
        webhook_sink(tenant, receiver, batch_size=4)
        ids = write_events(tenant, 10)
        siem_deliver_run()
    finally:
        receiver.stop()
    assert receiver.bad_signatures == 0
    assert max(len(batch) for batch in receiver.batches) <= 4
    assert [e["event_id"] for e in receiver.events() if e["kind"] == "call"] == ids


def test_a_failing_webhook_keeps_its_cursor_and_backs_off_then_gets_everything(tenant, certificates):
    receiver = WebhookReceiver(certificates, SECRET, status=503).start()
    try:
        sink = webhook_sink(tenant, receiver, retry_initial_seconds=0.2, retry_max_seconds=0.4)
        ids = write_events(tenant, 3)
        cursor = state(sink).cursor
        siem_deliver_run()
        failed = state(sink)
        assert failed.cursor == cursor and failed.failures == 1 and "HTTP 503" in failed.last_error
        assert failed.backlog == 3
        assert siem_deliver_run().skipped == 1  # still backing off
        receiver.status = 200
        time.sleep(0.45)
        siem_deliver_run()
    finally:
        receiver.stop()
    assert [e["event_id"] for e in receiver.events() if e["kind"] == "call"] == ids
    assert state(sink).failures == 0 and state(sink).last_error == ""


def test_a_webhook_secret_is_stored_encrypted_and_needed(tenant, certificates):
    receiver = WebhookReceiver(certificates, SECRET)
    sink = webhook_sink(tenant, receiver)
    assert SECRET not in sink.secret_encrypted and sink.has_secret
    assert SECRET not in json.dumps(list(AuditEvent.objects.values("details", "reason")), default=str)
    with pytest.raises(ValidationError, match="secret"):
        siem_sink_create(tenant=tenant, name="nosecret", kind="webhook", settings={"url": receiver.url})
    with pytest.raises(ValidationError, match="https"):
        siem_sink_create(
            tenant=tenant, name="plain", kind="webhook", settings={"url": "http://x.example/"}, secret=SECRET
        )


def test_a_webhook_at_a_metadata_address_is_never_called(tenant):
    sink = siem_sink_create(
        tenant=tenant,
        name="ssrf",
        kind="webhook",
        settings={"url": "https://169.254.169.254/latest/"},
        secret=SECRET,
    )
    write_events(tenant, 1)
    egress_policy.cache_clear()
    siem_deliver_run()
    assert "metadata" in state(sink).last_error


# --- isolation ---------------------------------------------------------------------------------


def black_hole() -> tuple[socket.socket, list[socket.socket]]:
    """A listener that accepts connections and never reads or closes them."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    return listener, held


def test_a_hanging_sink_costs_the_others_at_most_its_timeout_once_then_is_skipped(tenant, siem_dir):
    listener, held = black_hole()
    try:
        hanging = siem_sink_create(
            tenant=tenant,
            name="hanging",
            kind="syslog",
            settings={
                "host": "127.0.0.1",
                "port": listener.getsockname()[1],
                "tls": False,
                "timeout_seconds": 1.0,
                "retry_initial_seconds": 60,
            },
        )
        file_sink(tenant)
        ids = write_events(tenant, 2)
        started = time.monotonic()
        first = siem_deliver_run()
        first_seconds = time.monotonic() - started
        write_events(tenant, 1)
        started = time.monotonic()
        second = siem_deliver_run()
        second_seconds = time.monotonic() - started
    finally:
        listener.close()
        for sock in held:
            sock.close()
    assert [e["event_id"] for e in lines(siem_dir / "file.jsonl") if e["kind"] == "call"][:2] == ids
    assert first.failed == 1 and "timed out" in state(hanging).last_error
    assert first_seconds < 10  # one timeout (1 s), not an unbounded wait
    assert second.skipped == 1 and second.delivered >= 1
    assert second_seconds < first_seconds


def test_a_sink_leased_by_another_process_is_not_sent_the_same_batch(tenant, siem_dir):
    sink = file_sink(tenant)
    write_events(tenant, 2)
    SiemSinkState.objects.filter(pk=sink.pk).update(
        lease_token="other-process", lease_until=AuditEvent.objects.first().created_at.replace(year=2999)
    )
    assert siem_sink_deliver(sink_id=sink.pk).skipped
    assert lines(siem_dir / "file.jsonl") == []


def test_a_disabled_sink_receives_nothing_until_enabled_then_everything(tenant, siem_dir):
    from audit.siem.services import siem_sink_update

    sink = file_sink(tenant)
    siem_sink_update(sink=sink, enabled=False)
    ids = write_events(tenant, 2)
    siem_deliver_run()
    assert lines(siem_dir / "file.jsonl") == []
    siem_sink_update(sink=sink, enabled=True)
    siem_deliver_run()
    assert [e["event_id"] for e in lines(siem_dir / "file.jsonl") if e["kind"] == "call"] == ids


def test_a_closed_port_is_a_recorded_failure_not_an_exception(tenant):
    sink = siem_sink_create(
        tenant=tenant,
        name="down",
        kind="syslog",
        settings={"host": "127.0.0.1", "port": free_port(), "tls": False},
    )
    write_events(tenant, 1)
    report = siem_deliver_run()
    assert report.failed == 1
    assert "cannot connect" in state(sink).last_error
