"""``/api/v1/exports/``: audit exports through the API, as in the admin and on the command line.

POST asks for an export of a tenant and period in a format; it is written in the background (a
Celery task, or a thread of the gateway in the embedded default), and GET shows its progress. Once
it is ready, ``file`` and ``manifest`` download the export and its signed manifest (which
``manage.py verify_export`` checks offline). A reviewer may ask for and download its own tenant's
exports; nobody sees another tenant's.
"""

from __future__ import annotations

from typing import Any

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from audit.exports.services import audit_export_request
from audit.models import AuditExport
from audit.views import export_download
from gateway.api.fields import ScopedRelatedField
from gateway.api.views import caller_tenant
from gateway.api.viewsets import ReadMixin, TenantScopedViewSet
from gateway.models import Tenant


class AuditExportSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    tenant = ScopedRelatedField(queryset=Tenant.objects.all(), tenant_path="pk", required=False)

    class Meta:
        model = AuditExport
        fields = [
            "id", "tenant", "since", "until", "format", "state", "progress", "events", "requested_by",
            "requested_at", "finished_at", "file_name", "size_bytes", "sha256", "error",
        ]  # fmt: skip
        read_only_fields = [
            "id", "state", "progress", "events", "requested_by", "requested_at", "finished_at",
            "file_name", "size_bytes", "sha256", "error",
        ]  # fmt: skip

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["since"] >= attrs["until"]:
            raise serializers.ValidationError({"until": "The period must end after it starts."})
        return attrs


class AuditExportViewSet(ReadMixin, TenantScopedViewSet):
    """Audit exports: request one (POST), watch its progress, download the file and its manifest."""

    queryset = AuditExport.objects.order_by("-requested_at", "-id")
    serializer_class = AuditExportSerializer

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        export = audit_export_request(
            tenant=caller_tenant(request, data),
            since=data["since"],
            until=data["until"],
            format=data["format"],
            requested_by=request.user.get_username(),
        )
        return self.tagged(Response(self.get_serializer(export).data, status=201), export)

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def file(self, request: Request, pk: str | None = None) -> FileResponse:
        """The export's file, once it is ready (404 before)."""
        return export_download(self.get_object())

    @extend_schema(responses={(200, "application/json"): OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"])
    def manifest(self, request: Request, pk: str | None = None) -> FileResponse:
        """The export's signed manifest (SHA-256 of the file, the seals it covers), once it is ready."""
        return export_download(self.get_object(), manifest=True)
