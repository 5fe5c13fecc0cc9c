"""Reads of the core domain for operators: tenants, targets, credentials and users, in list order."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db.models import Count, Q, QuerySet

from gateway.models import Credential, Target, Tenant


def tenant_list() -> QuerySet[Tenant]:
    """Every tenant by name, with ``target_count`` and ``credential_count`` (not deactivated)."""
    return Tenant.objects.annotate(
        target_count=Count("targets", distinct=True),
        credential_count=Count(
            "credentials", filter=Q(credentials__deactivated_at__isnull=True), distinct=True
        ),
    ).order_by("name")


def target_list(*, tenant: Tenant | None = None) -> QuerySet[Target]:
    """The targets of ``tenant`` (every tenant's when None) by slug, their tenant loaded."""
    targets = Target.objects.select_related("tenant").order_by("slug")
    return targets if tenant is None else targets.filter(tenant=tenant)


def credential_list(
    *, tenant: Tenant | None = None, target: Target | None = None, include_deactivated: bool = False
) -> QuerySet[Credential]:
    """Credentials by tenant and name, their tenant and targets loaded; deactivated ones only when asked."""
    credentials = (
        Credential.objects.select_related("tenant")
        .prefetch_related("targets")
        .order_by("tenant__name", "name", "id")
    )
    if not include_deactivated:
        credentials = credentials.not_deactivated()
    if tenant is not None:
        credentials = credentials.filter(tenant=tenant)
    if target is not None:
        credentials = credentials.filter(targets=target)
    return credentials


def user_list(*, tenant: Tenant | None = None) -> QuerySet[User]:
    """Staff users by name with their tenant membership (superusers too, unless a tenant is given)."""
    users = (
        User.objects.filter(Q(is_staff=True) | Q(is_superuser=True) | Q(tenant_membership__isnull=False))
        .select_related("tenant_membership__tenant")
        .order_by("username")
    )
    return users if tenant is None else users.filter(tenant_membership__tenant=tenant)
