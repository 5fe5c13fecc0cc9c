"""API views of the audit app: the audit trail (read-only, for tenant admins and reviewers), the SIEM
sinks its events are streamed to, and each tenant's audit settings (retention). Writes go through
audit/siem/services.py and audit/retention.py, as the CLI's and the admin's do."""

from __future__ import annotations

import hashlib
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import F
from drf_spectacular.utils import extend_schema
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from audit.api import filters, serializers
from audit.models import AuditEvent, AuditSettings, SiemSink
from audit.retention import audit_retention_set
from audit.siem import services as siem
from gateway.api.permissions import RolePermissions
from gateway.api.serializers import StatusSerializer
from gateway.api.views import caller_tenant
from gateway.api.viewsets import ReadMixin, TenantScopedViewSet, WriteMixin
from gateway.models import Tenant


class AuditEventViewSet(ReadMixin, TenantScopedViewSet):
    """Audit events, newest first: calls, tool events, admin actions and configuration changes."""

    queryset = AuditEvent.objects.all()
    serializer_class = serializers.AuditEventSerializer
    filterset_class = filters.AuditEventFilter


class SiemSinkViewSet(ReadMixin, WriteMixin, TenantScopedViewSet):
    """SIEM sinks a tenant's audit events are streamed to (syslog, HTTPS webhook or JSON Lines file),
    each with where its delivery stands. A webhook's ``secret`` is write-only. ``retry`` tries a
    failing sink at the next delivery run instead of waiting out its backoff. Reviewers do not see
    sinks: they hold delivery settings, not audit data."""

    queryset = SiemSink.objects.select_related("state")
    serializer_class = serializers.SiemSinkSerializer
    filterset_class = filters.SiemSinkFilter
    change_actions = ("retry",)

    def create_row(self, data: dict[str, Any]) -> SiemSink:
        return siem.siem_sink_create(
            tenant=caller_tenant(self.request, data),
            name=data["name"],
            kind=data["kind"],
            settings=data.get("settings", {}),
            secret=data.get("secret", ""),
            enabled=data.get("enabled", True),
            from_start=data.get("from_start", False),
        )

    def update_row(self, sink: SiemSink, data: dict[str, Any]) -> SiemSink:
        if "tenant" in data and data["tenant"].pk != sink.tenant_id:
            raise ValidationError({"tenant": "A sink cannot move to another tenant."})
        return siem.siem_sink_update(
            sink=sink,
            name=data.get("name"),
            settings=data.get("settings"),
            enabled=data.get("enabled"),
            secret=data.get("secret"),
        )

    def delete_row(self, sink: SiemSink) -> None:
        siem.siem_sink_delete(sink=sink)

    @extend_schema(request=StatusSerializer, responses={200: serializers.SiemSinkSerializer})
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: str | None = None) -> Response:
        """Try the sink at the next delivery run instead of waiting out its backoff."""
        with transaction.atomic():
            sink = self.locked_object()
            siem.siem_sink_reset_backoff(sink=sink)
        sink = self.get_queryset().get(pk=sink.pk)
        return self.tagged(Response(self.get_serializer(sink).data), sink)


class AuditSettingsPermissions(RolePermissions):
    """The role's permissions on audit settings (a tenant admin changes its own; a reviewer does not
    see them), though the view serves them tenant by tenant."""

    def _queryset(self, view: Any) -> models.QuerySet[Any]:
        return AuditSettings.objects.all()


class AuditSettingsViewSet(ReadMixin, WriteMixin, TenantScopedViewSet):
    """Each tenant's audit settings, addressed by the tenant's id (every tenant has them: a tenant never
    configured keeps its events forever). ``retention_days`` null keeps them forever."""

    queryset = Tenant.objects.annotate(retention_days=F("audit_settings__retention_days"))
    serializer_class = serializers.AuditSettingsSerializer
    permission_classes = [AuditSettingsPermissions]
    tenant_path = "pk"
    http_method_names = ["get", "put", "patch", "head", "options"]

    def entity_tag_of(self, instance: models.Model) -> str:
        """Over what is served (the retention), not the tenant row: a rename does not stale it."""
        content = f"audit-settings:{instance.pk}:{getattr(instance, 'retention_days', None)}"
        return f'"{hashlib.sha256(content.encode()).hexdigest()[:32]}"'

    def update_row(self, tenant: Tenant, data: dict[str, Any]) -> Tenant:
        days = data["retention_days"] if "retention_days" in data else getattr(tenant, "retention_days", None)
        audit_retention_set(tenant=tenant, days=days)
        return tenant
