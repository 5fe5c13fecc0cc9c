"""Reads of the audit app: the state of each chain of seals, for the admin; the audit events a query
asks for, for the admin's list (audit/filters.py) and the API; who may see which export."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypedDict, Unpack

from django.db.models import Count, Max, QuerySet

from audit.models import AuditEvent, AuditExport, AuditSeal, AuditVerification, in_chain
from gateway.models import Tenant
from gateway.roles import access_for


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


class AuditEventCriteria(TypedDict, total=False):
    """What the audit list, the API and ``audit_event_list`` may narrow events by (absent or None: not
    narrowed by it); :func:`audit_events_filtered` says what each one means."""

    since: datetime | None
    until: datetime | None
    target_id: int | None
    credential_name: str | None
    tool: str | None
    decision: str | None
    reason: str | None


def audit_events_filtered(
    events: QuerySet[AuditEvent],
    *,
    tenant_ids: Collection[int] | None = None,
    **criteria: Unpack[AuditEventCriteria],
) -> QuerySet[AuditEvent]:
    """``events`` narrowed by every criterion given, in the order the indexes of AuditEvent.Meta serve.

    ``tenant_ids``: the events of these tenants (empty: none); ``since`` inclusive, ``until`` exclusive;
    ``credential_name`` and ``tool`` match exactly (the name stored at call time, so a deactivated or
    deleted credential is still found); ``reason`` is a case-insensitive part of the reason. Events with
    no reason are left out by a plain ``reason <> ''`` too, which lets PostgreSQL use the partial index
    on events that have one (about one in ten) instead of reading every event of the period.
    """
    unknown = criteria.keys() - AuditEventCriteria.__annotations__.keys()
    if unknown:  # what a signature listing each criterion would refuse
        raise TypeError(f"audit_events_filtered() got unexpected criteria {sorted(unknown)}")
    if tenant_ids is not None:
        events = events.filter(tenant_id__in=list(tenant_ids))
    since, until, reason = criteria.get("since"), criteria.get("until"), criteria.get("reason")
    if since is not None:
        events = events.filter(created_at__gte=since)
    if until is not None:
        events = events.filter(created_at__lt=until)
    exact = {field: criteria.get(field) for field in ("target_id", "credential_name", "tool", "decision")}
    events = events.filter(**{field: value for field, value in exact.items() if value is not None})
    if reason is not None:
        events = events.exclude(reason="").filter(reason__icontains=reason)
    return events


def audit_event_list(
    *, tenant_ids: Collection[int] | None, **criteria: Unpack[AuditEventCriteria]
) -> QuerySet[AuditEvent]:
    """The audit events matching every criterion given, newest first (see audit_events_filtered);
    ``tenant_ids`` None is every tenant's events and the events without one."""
    return audit_events_filtered(
        AuditEvent.objects.order_by("-created_at", "-id"), tenant_ids=tenant_ids, **criteria
    )


def export_visible_to(user: Any, export: AuditExport) -> bool:
    """Whether ``user`` may see ``export`` and download its file: the one place this is decided. A
    superuser sees every export; a tenant admin or reviewer (gateway/roles.py) its own tenant's."""
    access = access_for(user)
    return bool(getattr(user, "is_staff", False) or access.role == "superuser") and access.sees(
        export.tenant_id
    )


def exports_visible_to(user: Any) -> QuerySet[AuditExport]:
    """The exports ``user`` may see, newest first (the list form of :func:`export_visible_to`)."""
    exports = AuditExport.objects.order_by("-requested_at", "-id")
    if not getattr(user, "is_staff", False) and access_for(user).role != "superuser":
        return exports.none()
    return access_for(user).filter(exports, "tenant")
