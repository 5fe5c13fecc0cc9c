"""Celery tasks of the audit app: thin, they call a service."""

from __future__ import annotations

from celery import shared_task

from audit.services import audit_seal_run


@shared_task(name="audit.seal")
def seal_audit() -> dict[str, int]:
    """Seal every chain's new audit events (Celery beat runs it every minute; see CELERY_BEAT_SCHEDULE)."""
    return audit_seal_run().as_dict()


@shared_task(name="audit.siem_deliver")
def deliver_siem() -> dict[str, object]:
    """Send each enabled SIEM sink what it has not received yet (beat: every GATEWAY_SIEM_POLL_SECONDS)."""
    from audit.siem.services import siem_deliver_run

    return siem_deliver_run().as_dict()


@shared_task(name="audit.retention")
def apply_audit_retention() -> dict[str, object]:
    """Delete audit events past each tenant's retention, in whole sealed ranges (beat: hourly)."""
    from audit.retention import audit_retention_run

    return audit_retention_run().as_dict()


@shared_task(name="audit.export")
def export_audit(export_id: int) -> str:
    """Write the admin's export ``export_id`` (queued by ``audit_export_request``); returns its state."""
    from audit.exports.services import audit_export_run

    return audit_export_run(export_id=export_id).state
