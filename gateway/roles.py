"""Who may see and change what: the tenant roles, stated once for the admin, the API and the dashboard.

- A **superuser** sees and changes every tenant (Django's own permission rules apply unchanged).
- A **tenant admin** sees and changes everything of one tenant: its targets, credentials, rules, meters,
  protections, tool approvals, OAuth clients, SIEM sinks and audit retention, and reads its audit
  trail, usage and exports. It may rename its tenant but neither create nor delete tenants, and it
  manages no users.
- A **reviewer** reads the audit trail, the usage rollups and the exports of one tenant, and may
  request an export; it changes nothing.

A user's role is its ``TenantMembership`` (gateway/models.py): one tenant and one role per user.
Two pieces carry the rules: ``RoleBackend`` answers Django's model permissions from the role (so the
admin and DRF's permission classes work unchanged), and ``Access`` confines every query and object to
the user's tenant (``access_for(user).filter(queryset, path)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Model, QuerySet

M = TypeVar("M", bound=Model)

SUPERUSER = "superuser"
ADMIN = "admin"
REVIEWER = "reviewer"
NONE = "none"

#: The apps whose models a tenant admin manages (each model of them is confined to a tenant).
MANAGED_APPS = frozenset({"gateway", "policies", "metering", "audit", "gateway_oauth"})
#: Models no tenant admin changes: tenants are created and deleted by a superuser, users likewise.
SUPERUSER_ONLY = frozenset({"gateway.tenantmembership", "gateway.apitoken"})
#: What a reviewer reads (view permission), and what it may create besides (an export request).
REVIEWER_VIEWS = frozenset({"audit.auditevent", "audit.auditseal", "audit.auditverification",
                            "audit.auditexport", "metering.usagerollup"})  # fmt: skip
REVIEWER_ADDS = frozenset({"audit.auditexport"})


@dataclass(frozen=True, slots=True)
class Access:
    """What one user may reach: ``tenant_ids`` None means every tenant (a superuser)."""

    role: str
    tenant_ids: frozenset[int] | None

    @property
    def is_member(self) -> bool:
        return self.role in (ADMIN, REVIEWER)

    def sees(self, tenant_id: int | None) -> bool:
        """Whether objects of this tenant are visible to the user at all."""
        if self.tenant_ids is None:
            return self.role == SUPERUSER
        return tenant_id in self.tenant_ids

    def may_change(self, tenant_id: int | None) -> bool:
        return self.role == SUPERUSER or (self.role == ADMIN and self.sees(tenant_id))

    def filter(self, queryset: QuerySet[M], path: str) -> QuerySet[M]:
        """``queryset`` cut down to the user's tenant; ``path`` leads from the model to its tenant id
        (``"tenant"``, ``"credential__tenant"``, ``"pk"`` for Tenant itself)."""
        if self.role == SUPERUSER:
            return queryset
        if not self.tenant_ids:
            return queryset.none()
        lookup = "pk__in" if path == "pk" else f"{path}__in"
        return queryset.filter(**{lookup: sorted(self.tenant_ids)})


def tenant_id_of(obj: Model, path: str) -> int | None:
    """The tenant id of ``obj``, following ``path`` as :meth:`Access.filter` does (``"pk"`` for a tenant;
    the last hop's ``<name>_id`` column is read, so no query loads the tenant itself)."""
    if path == "pk":
        return int(obj.pk)
    *hops, last = path.split("__")
    row: Any = obj
    for hop in hops:
        row = getattr(row, hop, None)
        if row is None:
            return None
    value = getattr(row, f"{last}_id", None)
    return int(value) if value is not None else None


NO_ACCESS = Access(role=NONE, tenant_ids=frozenset())
ALL_ACCESS = Access(role=SUPERUSER, tenant_ids=None)


def access_for(user: AbstractBaseUser | AnonymousUser | Any) -> Access:
    """The user's access, from its membership (read once per request and cached on the user object)."""
    if user is None or not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return NO_ACCESS
    if getattr(user, "is_superuser", False):
        return ALL_ACCESS
    cached = getattr(user, "_gateway_access", None)
    if isinstance(cached, Access):
        return cached
    from gateway.models import TenantMembership

    membership = TenantMembership.objects.filter(user_id=user.pk).values_list("tenant_id", "role").first()
    access = (
        NO_ACCESS if membership is None else Access(role=membership[1], tenant_ids=frozenset({membership[0]}))
    )
    user._gateway_access = access
    return access


def role_permits(role: str, app_label: str, codename: str) -> bool:
    """Whether a role holds the Django model permission ``app_label.codename`` (tenant aside)."""
    action, _, model = codename.partition("_")
    model_key = f"{app_label}.{model}"
    if role == ADMIN:
        if app_label not in MANAGED_APPS or model_key in SUPERUSER_ONLY:
            return False
        return not (model_key == "gateway.tenant" and action in ("add", "delete"))
    if role == REVIEWER:
        return (action == "view" and model_key in REVIEWER_VIEWS) or (
            action == "add" and model_key in REVIEWER_ADDS
        )
    return False


class RoleBackend:
    """An authentication backend that authenticates nobody and grants tenant members the model
    permissions of their role (superusers get theirs from Django's ModelBackend as always). Which rows
    those permissions reach is ``Access``'s job: the admin, the API and the dashboard filter by it."""

    def authenticate(self, request: Any, **credentials: Any) -> None:
        return None

    def has_perm(self, user_obj: Any, perm: str, obj: Any = None) -> bool:
        access = access_for(user_obj)
        if not access.is_member or not user_obj.is_staff:
            return False
        app_label, _, codename = perm.partition(".")
        return role_permits(access.role, app_label, codename)

    def has_module_perms(self, user_obj: Any, app_label: str) -> bool:
        access = access_for(user_obj)
        if not access.is_member or not user_obj.is_staff:
            return False
        if access.role == ADMIN:
            return app_label in MANAGED_APPS
        return any(key.startswith(f"{app_label}.") for key in REVIEWER_VIEWS)
