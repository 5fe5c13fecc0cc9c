"""The admin's half of the tenant roles (gateway/roles.py): every admin page of a tenant-owned model
shows, offers and accepts only the signed-in user's tenant.

``TenantScopedAdmin`` is the base of every ModelAdmin and inline of the gateway's apps. It confines
the changelist and every object view to the user's tenant (another tenant's object is a 404, as if it
did not exist), checks the object's tenant on change and delete, offers only the user's own tenants,
targets and credentials in foreign-key and many-to-many choices and in the sidebar filters, and lets
the role (via ``RoleBackend``'s model permissions) decide what may be changed at all.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.db.models import QuerySet
from django.http import Http404, HttpRequest

from gateway.roles import access_for, tenant_id_of

#: The path from each tenant-owned model that other models point at, to its tenant id.
RELATED_TENANT_PATHS: dict[str, str] = {
    "gateway.tenant": "pk",
    "gateway.target": "tenant",
    "gateway.credential": "tenant",
}


def related_tenant_path(model: type[models.Model]) -> str | None:
    return RELATED_TENANT_PATHS.get(model._meta.label_lower)


def scoped_choices(request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
    """A foreign key's or many-to-many's choices, cut down to the user's tenant."""
    path = related_tenant_path(queryset.model)
    return queryset if path is None else access_for(request.user).filter(queryset, path)


class ScopedRelatedFilter(admin.RelatedFieldListFilter):
    """The sidebar filter on a tenant, target or credential: lists only the user's own."""

    def field_choices(self, field: Any, request: HttpRequest, model_admin: admin.ModelAdmin) -> Any:
        related = field.related_model
        path = related_tenant_path(related)
        if path is None:
            return super().field_choices(field, request, model_admin)
        rows = access_for(request.user).filter(related._default_manager.all(), path)
        return [(row.pk, str(row)) for row in rows[:500]]


class TenantScopedMixin:
    """Shared by ModelAdmins and inlines: scoped queryset and scoped choices."""

    #: Path from this admin's model to its tenant id ("tenant", "credential__tenant", "pk").
    tenant_path = "tenant"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)  # type: ignore[misc]
        return access_for(request.user).filter(queryset, self.tenant_path)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        formfield = super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]
        if formfield is not None and hasattr(formfield, "queryset"):
            formfield.queryset = scoped_choices(request, formfield.queryset)
        return formfield

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        formfield = super().formfield_for_manytomany(db_field, request, **kwargs)  # type: ignore[misc]
        if formfield is not None and hasattr(formfield, "queryset"):
            formfield.queryset = scoped_choices(request, formfield.queryset)
        return formfield

    def object_tenant_id(self, obj: Any) -> int | None:
        """The tenant id of one object, following ``tenant_path``."""
        return tenant_id_of(obj, self.tenant_path)


class TenantScopedAdmin(TenantScopedMixin, admin.ModelAdmin):
    """The base ModelAdmin of every tenant-owned model (see the module docstring)."""

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Any:
        """Another tenant's object is not found (404), exactly like one that does not exist: the admin's
        usual redirect to the index would differ, and the difference would tell that it exists."""
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404("No such object.")
        return obj

    def get_list_filter(self, request: HttpRequest) -> Any:
        """Every plain filter on a tenant, target or credential lists only the user's own."""
        scoped: list[Any] = []
        for entry in super().get_list_filter(request):
            field = _relation(self.model, entry) if isinstance(entry, str) else None
            if field is not None and related_tenant_path(field.related_model) is not None:
                scoped.append((entry, ScopedRelatedFilter))
            else:
                scoped.append(entry)
        return scoped

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed = super().has_view_permission(request, obj)
        return allowed and (obj is None or access_for(request.user).sees(self.object_tenant_id(obj)))

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or access_for(request.user).may_change(self.object_tenant_id(obj)))

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or access_for(request.user).may_change(self.object_tenant_id(obj)))


def _relation(model: type[models.Model], name: str) -> Any:
    """The relation field at the end of ``name`` ("tenant", "credential__tenant"), or None."""
    field: Any = None
    for part in name.split("__"):
        try:
            field = model._meta.get_field(part)
        except FieldDoesNotExist:  # a filter on something else stays as it is
            return None
        if getattr(field, "related_model", None) is None:
            return None
        model = field.related_model
    return field
