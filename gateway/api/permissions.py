"""Who may call what in the REST API: Django model permissions of the user's role (gateway/roles.py,
answered by RoleBackend), an object-level tenant check, and the token's scope. No rule is restated
here: ``access_for(user)`` says which tenants a user sees and changes."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.permissions import SAFE_METHODS, DjangoModelPermissions
from rest_framework.request import Request

from gateway.api.authentication import token_scope
from gateway.models import ApiToken
from gateway.roles import access_for


class RolePermissions(DjangoModelPermissions):
    """DRF's model permissions with ``view`` for reads; an action that changes a row (``rotate``,
    ``approve`` ...) needs the ``change`` permission; a read-only token may only read."""

    perms_map = {
        **DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
    }

    def has_permission(self, request: Request, view: Any) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False
        if request.method not in SAFE_METHODS and token_scope(request) == ApiToken.Scope.READ:
            raise exceptions.PermissionDenied("This API token is read-only: use a write token to change.")
        if getattr(view, "action", None) in getattr(view, "change_actions", ()):
            model = self._queryset(view).model
            perm = f"{model._meta.app_label}.change_{model._meta.model_name}"
            return bool(request.user.has_perm(perm))
        return bool(super().has_permission(request, view))

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        """Another tenant's object does not exist for the caller (404); one it sees but may not change
        (a reviewer's) is refused (403)."""
        tenant_id = view.tenant_of(obj)
        access = access_for(request.user)
        if not access.sees(tenant_id):
            raise exceptions.NotFound()
        return request.method in SAFE_METHODS or access.may_change(tenant_id)
