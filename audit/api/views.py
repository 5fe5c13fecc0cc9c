"""API views of the audit app: the audit trail, read-only, for tenant admins and reviewers."""

from __future__ import annotations

from audit.api import filters, serializers
from audit.models import AuditEvent
from gateway.api.viewsets import ReadMixin, TenantScopedViewSet


class AuditEventViewSet(ReadMixin, TenantScopedViewSet):
    """Audit events, newest first: calls, tool events, admin actions and configuration changes."""

    queryset = AuditEvent.objects.all()
    serializer_class = serializers.AuditEventSerializer
    filterset_class = filters.AuditEventFilter
