"""Audit retention: events past a tenant's retention are deleted in whole sealed ranges, the seals
stay and still verify, and any other deletion is still named by verify_audit."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from audit.models import AuditEvent, AuditSeal, AuditSettings
from audit.retention import RETENTION_ACTION, audit_retention_run, audit_retention_set
from audit.services import audit_seal_run
from audit.writer import write_records
from gateway.conf import gateway_settings
from tests.audit.test_seals import events
from tests.commands import run_command, run_verdict

OLD = timedelta(days=40)


@pytest.fixture
def tenant(tenant: Any) -> Any:
    """The shared tenant, its creation (a change-log entry) left out: these tests seal ranges of events
    of chosen ages."""
    AuditEvent.objects.filter(kind=AuditEvent.Kind.CHANGE).delete()
    return tenant


def sealed_batch(tenant: Any, count: int, prefix: str, age: timedelta = timedelta(0)) -> AuditSeal:
    """``count`` events of ``tenant`` created ``age`` ago, sealed in a seal of their own."""
    write_records(events(count, prefix, tenant_id=tenant.pk, created_at=timezone.now() - age))
    audit_seal_run()
    return AuditSeal.objects.filter(tenant=tenant).order_by("-sequence").first()


def verify(*args: str) -> tuple[bool, dict[str, Any]]:
    """Run ``verify_audit --json``: (passed, its JSON)."""
    return run_verdict("verify_audit", *args)


def request_ids(prefix: str) -> list[str]:
    return list(AuditEvent.objects.filter(request_id__startswith=prefix).values_list("request_id", flat=True))


def keep_30_days(tenant: Any) -> None:
    audit_retention_set(tenant=tenant, days=30)
    audit_seal_run()  # the setting's own change-log entry, sealed like any


def test_retention_deletes_whole_old_seals_keeps_the_seals_and_the_trail_still_verifies(tenant):
    # given: two seals of 40-day-old events and one of new events
    sealed_batch(tenant, 5, "old1-", OLD)
    sealed_batch(tenant, 4, "old2-", OLD)
    sealed_batch(tenant, 3, "new-")
    keep_30_days(tenant)
    seals_before = AuditSeal.objects.filter(tenant=tenant).count()
    # when
    report = audit_retention_run()
    # then
    assert [(t.seals_pruned, t.events_deleted, t.pruned_through_sequence) for t in report.tenants] == [
        (2, 9, 2)
    ]
    assert request_ids("old") == [] and len(request_ids("new-")) == 3
    assert (
        AuditSeal.objects.filter(tenant=tenant).count() >= seals_before
    )  # none removed (one more: the entry's)
    passed, data = verify()
    assert passed, data
    assert data["chains"][0]["pruned_seals"] == 2


def test_each_retention_run_is_a_sealed_change_log_entry(tenant):
    sealed_batch(tenant, 2, "old-", OLD)
    keep_30_days(tenant)
    audit_retention_run()
    entry = AuditEvent.objects.get(kind=AuditEvent.Kind.CHANGE, details__action=RETENTION_ACTION)
    assert entry.seal_id is not None
    assert entry.details["pruned_through_sequence"] == 1 and entry.details["events_deleted"] == 2
    assert "retention (30 days)" in entry.reason


def test_unsealed_events_and_a_seal_holding_a_recent_event_are_kept(tenant):
    old = timezone.now() - OLD
    sealed_batch(tenant, 2, "gone-", OLD)
    write_records(
        events(1, "mixed-old-", tenant_id=tenant.pk, created_at=old)
        + events(1, "mixed-new-", tenant_id=tenant.pk)
    )
    audit_seal_run()
    keep_30_days(tenant)
    write_records(events(2, "unsealed-old-", tenant_id=tenant.pk, created_at=old))

    audit_retention_run()

    assert request_ids("gone-") == []
    assert len(request_ids("mixed-")) == 2
    assert len(request_ids("unsealed-old-")) == 2
    assert verify()[0]


def test_an_event_deleted_outside_retention_is_still_named(tenant):
    sealed_batch(tenant, 3, "old-", OLD)
    sealed_batch(tenant, 3, "new-")
    keep_30_days(tenant)
    audit_retention_run()
    victim = AuditEvent.objects.filter(request_id__startswith="new-").order_by("id").first().id
    AuditEvent.objects.filter(pk=victim).delete()

    passed, data = verify()

    assert not passed
    problem = data["chains"][0]["first_problem"]
    assert (problem["kind"], problem["event"]) == ("deleted", victim)


def test_a_seal_that_does_not_verify_is_not_pruned_so_the_deletion_stays_visible(tenant):
    sealed_batch(tenant, 3, "old-", OLD)
    keep_30_days(tenant)
    victim = AuditEvent.objects.filter(request_id__startswith="old-").order_by("id").first().id
    AuditEvent.objects.filter(pk=victim).delete()

    report = audit_retention_run()

    assert report.tenants[0].seals_pruned == 0 and "does not verify" in report.tenants[0].refused
    assert len(request_ids("old-")) == 2
    passed, data = verify()
    assert not passed and data["chains"][0]["first_problem"]["event"] == victim


def test_a_retention_record_edited_to_cover_a_deletion_is_named(tenant):
    sealed_batch(tenant, 2, "old-", OLD)
    sealed_batch(tenant, 2, "new-")
    keep_30_days(tenant)
    audit_retention_run()
    # someone deletes the newer seal's events and stretches the retention record over them
    AuditEvent.objects.filter(request_id__startswith="new-").delete()
    entry = AuditEvent.objects.get(kind=AuditEvent.Kind.CHANGE, details__action=RETENTION_ACTION)
    AuditEvent.objects.filter(pk=entry.pk).update(details={**entry.details, "pruned_through_sequence": 2})

    passed, data = verify()

    assert not passed
    kinds = {(p["kind"], p["event"]) for p in data["chains"][0]["problems"]}
    assert ("edited", entry.pk) in kinds


def test_a_tenant_without_retention_keeps_everything(tenant):
    sealed_batch(tenant, 2, "old-", OLD)
    assert audit_retention_run().tenants == []
    assert len(request_ids("old-")) == 2
    assert not AuditSettings.objects.exists()


def test_the_commands_set_and_apply_retention_and_verify_audit_reports_the_pruned_seals(tenant):
    sealed_batch(tenant, 2, "old-", OLD)
    assert "keeps its audit events 30 days" in run_command("set_audit_retention --tenant acme --days 30")
    audit_seal_run()
    assert "2 event(s) of 1 seal(s) deleted" in run_command("apply_audit_retention")
    out = io.StringIO()
    call_command("verify_audit", stdout=out)
    assert "1 seal(s) pruned by retention" in out.getvalue() and "OK" in out.getvalue()
    entry = AuditEvent.objects.get(kind=AuditEvent.Kind.CHANGE, details__action=RETENTION_ACTION)
    assert entry.details["source"] == "cli"
    with pytest.raises(CommandError):
        run_command("set_audit_retention --tenant acme --days 0")


def test_events_a_siem_sink_has_not_received_yet_are_kept_until_it_has(tenant, settings, tmp_path):
    from audit.siem.services import siem_deliver_run, siem_sink_create

    # given: a file sink that has received nothing yet (as if its collector were down)
    settings.GATEWAY = {**settings.GATEWAY, "SIEM_FILE_DIR": str(tmp_path)}
    gateway_settings.cache_clear()
    sealed_batch(tenant, 3, "old-", OLD)
    siem_sink_create(
        tenant=tenant, name="shipper", kind="file", settings={"path": "a.jsonl"}, from_start=True
    )
    keep_30_days(tenant)
    # when retention runs before delivery, nothing the sink still owes is deleted
    report = audit_retention_run()
    assert report.tenants[0].seals_pruned == 0
    assert "SIEM sink 'shipper' has not received it all" in report.tenants[0].refused
    assert len(request_ids("old-")) == 3
    # and once the sink has them, they go
    siem_deliver_run()
    assert audit_retention_run().tenants[0].events_deleted == 3
    assert request_ids("old-") == []
