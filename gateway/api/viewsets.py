"""The base of every API view set: rows confined to the caller's tenant, writes through the services
recorded in the change log as made by the user through "api", ETag / If-Match on detail views."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

from django.db import models, transaction
from rest_framework import viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from audit.changes import changes_by
from gateway.api.etags import check_if_match, entity_tag
from gateway.roles import access_for, tenant_id_of


class TenantScopedViewSet(viewsets.GenericViewSet):  # type: ignore[type-arg]
    """``tenant_path`` leads from the model to its tenant (``"tenant"``, ``"credential__tenant"``, ``"pk"``
    for a tenant): lists and lookups only ever see the caller's tenant (another tenant's row is a 404),
    and a detail GET answers with the row's ETag."""

    tenant_path = "tenant"
    #: Actions (POST on a row) that change it: they need the ``change`` permission, not ``add``.
    change_actions: tuple[str, ...] = ()

    def get_queryset(self) -> models.QuerySet[Any]:
        queryset = access_for(self.request.user).filter(super().get_queryset(), self.tenant_path)
        if (
            self.request.method not in ("GET", "HEAD", "OPTIONS")
            and transaction.get_connection().in_atomic_block
        ):
            queryset = queryset.select_for_update(of=("self",))
        return queryset

    def filter_queryset(self, queryset: models.QuerySet[Any]) -> models.QuerySet[Any]:
        """List filters apply to lists only: a detail URL names its row."""
        if self.action != "list":
            return queryset
        return super().filter_queryset(queryset)

    def tenant_of(self, obj: models.Model) -> int | None:
        """The tenant id of ``obj``, following ``tenant_path``."""
        return tenant_id_of(obj, self.tenant_path)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        """After authentication: the change log names the user and the source "api" for this request."""
        super().initial(request, *args, **kwargs)
        self._acting = ExitStack()
        self._acting.enter_context(changes_by(actor=request.user.get_username(), source="api"))

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        acting = getattr(self, "_acting", None)
        if acting is not None:
            acting.close()
        return super().finalize_response(request, response, *args, **kwargs)

    def entity_tag_of(self, instance: models.Model) -> str:
        """The ETag of what the view serves of ``instance``: the row's own, unless the view says."""
        return entity_tag(instance)

    def tagged(self, response: Response, instance: models.Model) -> Response:
        response["ETag"] = self.entity_tag_of(instance)
        return response

    def locked_object(self) -> models.Model:
        """The row of this detail request, locked until the transaction ends, after If-Match is checked."""
        instance = self.get_object()
        check_if_match(self.request.headers.get("If-Match"), self.entity_tag_of(instance))
        return instance


class ReadMixin:
    """list and retrieve (with ETag)."""

    def list(self: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        serializer = self.get_serializer(page, many=True)
        return self.get_paginated_response(serializer.data)

    def retrieve(self: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        instance = self.get_object()
        return self.tagged(Response(self.get_serializer(instance).data), instance)


class WriteMixin:
    """create, update (PUT and PATCH) and destroy through the view set's service hooks ``create_row``,
    ``update_row`` and ``delete_row``; each write is one transaction, the row locked and If-Match checked."""

    def create(self: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            instance = self.create_row(serializer.validated_data)
        return self.tagged(Response(self.get_serializer(instance).data, status=201), instance)

    def update(self: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        partial = kwargs.pop("partial", False)
        with transaction.atomic():
            instance = self.locked_object()
            serializer = self.get_serializer(instance, data=request.data, partial=partial)
            serializer.is_valid(raise_exception=True)
            instance = self.update_row(instance, serializer.validated_data)
        instance = self.get_queryset().get(pk=instance.pk)
        return self.tagged(Response(self.get_serializer(instance).data), instance)

    def partial_update(self: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        kwargs["partial"] = True
        return self.update(request, *args, **kwargs)

    def destroy(self: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        with transaction.atomic():
            self.delete_row(self.locked_object())
        return Response(status=204)
