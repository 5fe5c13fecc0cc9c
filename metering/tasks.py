"""Celery tasks of the metering app: thin, they call a service."""

from __future__ import annotations

from celery import shared_task

from metering.services import usage_rollup_run


@shared_task(name="metering.rollup_usage")
def rollup_usage() -> dict[str, int]:
    """Recompute the usage rollups (Celery beat runs it every minute; see CELERY_BEAT_SCHEDULE)."""
    return usage_rollup_run().as_dict()
