"""Celery tasks of the audit app: thin, they call a service."""

from __future__ import annotations

from celery import shared_task

from audit.services import audit_seal_run


@shared_task(name="audit.seal")
def seal_audit() -> dict[str, int]:
    """Seal every chain's new audit events (Celery beat runs it every minute; see CELERY_BEAT_SCHEDULE)."""
    return audit_seal_run().as_dict()
