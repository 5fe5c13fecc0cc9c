"""Audit retention: per tenant, events older than its ``retention_days`` (:class:`AuditSettings`) are
deleted, in whole sealed ranges only, and the seals are kept.

A run (Celery beat ``audit.retention`` hourly, or ``manage.py apply_audit_retention``) takes each
tenant's seals in sequence order from the first not yet pruned and prunes the longest run of them
whose events are all older than the cutoff (at most :data:`MAX_SEALS_PER_RUN` per run). An unsealed
event is never deleted, nor part of a seal. Before a seal's events are deleted the seal is verified
(signature, link, every event against its manifest): a seal that does not verify is not pruned, so
retention never erases the evidence of tampering; the run reports it instead.

The seals stay, with their manifests, so the chain still verifies. Each run that deletes anything
writes a change-log entry (``details.action`` = ``"retention"``) saying which seals it pruned and
``pruned_through_sequence``: every seal of the chain up to that sequence, cumulatively. The entry is
written in the same transaction as the deletion and sealed at once, so the claim is signed before
it counts. ``verify_audit`` reads the newest sealed entry (:func:`retention_horizon`): events missing
from a seal at or below it were pruned; any other missing event is still reported as deleted.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import DatabaseError, connection, transaction
from django.db.models import Max
from django.utils import timezone

from audit.canonical import canonical_time
from audit.changes import current_change_actor
from audit.models import AuditEvent, AuditSeal, AuditSettings, in_chain
from audit.records import event_record, sanitise_record
from audit.services import audit_chain_seal
from audit.siem.selectors import siem_deliveries
from audit.signing import NoSigningKey
from audit.verification import seal_problems
from gateway.conf import gateway_settings
from gateway.models import Tenant

logger = logging.getLogger(__name__)

RETENTION_ACTION = "retention"
MAX_SEALS_PER_RUN = 100


@dataclass(frozen=True, slots=True)
class RetentionHorizon:
    """What retention has pruned in one chain: every seal up to ``through`` (events before
    ``retained_from`` deleted), as the sealed change-log entry ``entry_id`` records."""

    through: int
    retained_from: str
    entry_id: int


def retention_horizon(tenant_id: int | None) -> RetentionHorizon | None:
    """The newest *sealed* retention entry of the chain, or None if nothing was ever pruned."""
    if tenant_id is None:
        return None
    entries = AuditEvent.objects.filter(
        in_chain(tenant_id), kind=AuditEvent.Kind.CHANGE, details__action=RETENTION_ACTION, seal__isnull=False
    )
    entry = entries.order_by("-id").values("id", "details").first()
    if entry is None:
        return None
    details = entry["details"]
    through = details.get("pruned_through_sequence")
    if not isinstance(through, int) or isinstance(through, bool) or through < 1:
        return None
    return RetentionHorizon(through, str(details.get("retained_from", "")), entry["id"])


@dataclass
class TenantRetention:
    """What one run did for one tenant."""

    tenant: str
    seals_pruned: int = 0
    events_deleted: int = 0
    pruned_through_sequence: int | None = None
    refused: str = ""


@dataclass
class RetentionReport:
    """What one run did over all tenants with a retention."""

    tenants: list[TenantRetention] = field(default_factory=list)
    failed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def audit_retention_set(*, tenant: Tenant, days: int | None) -> AuditSettings:
    """Keep ``tenant``'s audit events ``days`` days (None: forever). Raises ValidationError."""
    settings, _ = AuditSettings.objects.get_or_create(tenant=tenant)
    settings.retention_days = days
    settings.full_clean()
    settings.save()
    return settings


def audit_retention_run(*, now: datetime | None = None) -> RetentionReport:
    """Apply every tenant's retention (see module doc). A tenant that fails is logged and counted;
    the others are done."""
    moment = now or timezone.now()
    report = RetentionReport()
    for settings in AuditSettings.objects.filter(retention_days__isnull=False).select_related("tenant"):
        try:
            result = audit_tenant_retention(
                tenant=settings.tenant, days=settings.retention_days or 0, now=moment
            )
        except (DatabaseError, NoSigningKey) as exc:
            report.failed += 1
            logger.warning("audit retention of tenant %s failed: %s", settings.tenant_id, type(exc).__name__)
            continue
        report.tenants.append(result)
    return report


def audit_tenant_retention(*, tenant: Tenant, days: int, now: datetime) -> TenantRetention:
    """Prune ``tenant``'s sealed ranges whose events are all older than ``days`` days (module doc).

    Raises NoSigningKey without a signing key (nothing is deleted then: the record could not be
    sealed) and the database's errors.
    """
    cutoff = now - timedelta(days=days)
    result = TenantRetention(tenant=tenant.name)
    with transaction.atomic():
        _lock_retention(tenant.pk)
        horizon = retention_horizon(tenant.pk)
        first = horizon.through + 1 if horizon else 1
        prunable = _prunable_seals(tenant.pk, first, cutoff, result)
        if not prunable:
            return result
        deleted, _ = AuditEvent.objects.filter(seal__in=prunable).delete()
        result.seals_pruned = len(prunable)
        result.events_deleted = deleted
        result.pruned_through_sequence = prunable[-1].sequence
        _record_and_seal(tenant.pk, days, cutoff, prunable, deleted)
    logger.info("audit retention of tenant %s: %s event(s) deleted", tenant.pk, deleted)
    return result


def _prunable_seals(tenant_id: int, first: int, cutoff: datetime, result: TenantRetention) -> list[AuditSeal]:
    """The seals from sequence ``first`` on, in order, whose events all predate ``cutoff``, that verify,
    and whose events every enabled SIEM sink of the tenant has received; stops at the first that does
    not qualify (noting in ``result`` why, unless it is merely too young)."""
    seals = list(
        AuditSeal.objects.filter(in_chain(tenant_id), sequence__gte=first).order_by("sequence")[
            :MAX_SEALS_PER_RUN
        ]
    )
    newest = dict(
        AuditEvent.objects.filter(seal__in=seals)
        .order_by()
        .values("seal_id")
        .annotate(newest=Max("created_at"))
        .values_list("seal_id", "newest")
    )
    deliveries = siem_deliveries(tenant_id=tenant_id)
    prunable: list[AuditSeal] = []
    for seal in seals:
        youngest = newest.get(seal.pk)
        if seal.sequence != first + len(prunable) or youngest is None or youngest >= cutoff:
            if youngest is None and seal.sequence == first + len(prunable):
                result.refused = f"seal #{seal.sequence} has none of its events left: not pruned"
            break
        owing = deliveries.first_owing(first_event_id=seal.first_event_id, last_event_id=seal.last_event_id)
        if owing is not None:
            result.refused = f"seal #{seal.sequence}: SIEM sink {owing!r} has not received it all, not pruned"
            break
        problems = seal_problems(seal)
        if problems:
            result.refused = f"not pruned, it does not verify: {problems[0].message}"
            break
        prunable.append(seal)
    return prunable


def _record_and_seal(
    tenant_id: int, days: int, cutoff: datetime, pruned: list[AuditSeal], deleted: int
) -> None:
    """Write the run's change-log entry and seal it (with whatever else is unsealed) before commit."""
    who = current_change_actor()
    first, last = pruned[0].sequence, pruned[-1].sequence
    reason = (
        f"audit retention ({days} days) by {who.actor} ({who.source}): {deleted} event(s) of seals "
        f"#{first}-#{last} deleted, the seals kept"
    )
    record = event_record(
        kind=AuditEvent.Kind.CHANGE,
        reason=reason,
        tenant_id=tenant_id,
        http_method="",
        path=f"{who.source}: retention",
        route="audit retention",
        details={
            "action": RETENTION_ACTION,
            "object_type": "audit_retention",
            "actor": who.actor,
            "source": who.source,
            "retention_days": days,
            "retained_from": canonical_time(cutoff),
            "pruned_seals": [first, last],
            "pruned_through_sequence": last,
            "events_deleted": deleted,
            "changes": {},
        },
    )
    entry = AuditEvent.objects.create(**sanitise_record(record))
    limit = gateway_settings().audit_seal_max_events
    while AuditEvent.objects.filter(pk=entry.pk, seal__isnull=True).exists():
        if audit_chain_seal(tenant_id=tenant_id, max_events=limit) is None:
            raise DatabaseError("the retention entry could not be sealed")


def _lock_retention(tenant_id: int) -> None:
    """One retention run per tenant at a time (PostgreSQL advisory lock, held until commit)."""
    if connection.vendor != "postgresql":
        return
    digest = hashlib.sha256(f"audit-retention:{tenant_id}".encode()).digest()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [int.from_bytes(digest[:8], "big", signed=True)])
