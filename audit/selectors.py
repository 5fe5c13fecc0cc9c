"""Reads of the audit app: the state of each chain of seals, for the admin; who may see which export."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Max, QuerySet

from audit.models import AuditEvent, AuditExport, AuditSeal, AuditVerification, in_chain
from gateway.models import Tenant


@dataclass(frozen=True, slots=True)
class ChainStatus:
    """One chain (a tenant, or the events without one): its newest seal and its last verification."""

    tenant_id: int | None
    tenant_name: str
    seals: int
    last_sealed_at: datetime | None
    seal_age: timedelta | None
    unsealed_events: int
    last_verification: AuditVerification | None


def seal_chain_status(*, now: datetime) -> list[ChainStatus]:
    """Every chain that has seals, unsealed events or a verification, tenants by name."""
    sealed = {
        row["tenant_id"]: row
        for row in AuditSeal.objects.order_by()
        .values("tenant_id")
        .annotate(seals=Max("sequence"), last=Max("created_at"))
    }
    unsealed = dict(
        AuditEvent.objects.filter(seal__isnull=True)
        .order_by()
        .values("tenant_id")
        .annotate(count=Count("id"))
        .values_list("tenant_id", "count")
    )
    verified = set(AuditVerification.objects.order_by().values_list("tenant_id", flat=True).distinct())
    chains = set(sealed) | set(unsealed) | verified
    names = dict(Tenant.objects.filter(id__in=[c for c in chains if c]).values_list("id", "name"))
    statuses = []
    for chain in chains:
        last = sealed[chain]["last"] if chain in sealed else None
        statuses.append(
            ChainStatus(
                tenant_id=chain,
                tenant_name=names.get(chain, "(no tenant)" if chain is None else f"#{chain} (deleted)"),
                seals=sealed[chain]["seals"] if chain in sealed else 0,
                last_sealed_at=last,
                seal_age=now - last if last else None,
                unsealed_events=unsealed.get(chain, 0),
                last_verification=AuditVerification.objects.filter(in_chain(chain)).first(),
            )
        )
    return sorted(statuses, key=lambda status: status.tenant_name)


def export_visible_to(user: Any, export: AuditExport) -> bool:
    """Whether ``user`` may see ``export`` and download its file: the one place this is decided.

    For now any active staff user or superuser (the admin's own gate); the reviewer role, bound to
    one tenant, narrows it here (see :func:`exports_visible_to`, which must agree).
    """
    return bool(getattr(user, "is_active", False) and (user.is_superuser or user.is_staff))


def exports_visible_to(user: Any) -> QuerySet[AuditExport]:
    """The exports ``user`` may see, newest first (the list form of :func:`export_visible_to`)."""
    exports = AuditExport.objects.order_by("-requested_at", "-id")
    if not getattr(user, "is_active", False) or not (user.is_superuser or user.is_staff):
        return exports.none()
    return exports
