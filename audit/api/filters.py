"""The audit event list's filters: the admin's (time, target, credential, tool, decision, reason, kind)."""

from __future__ import annotations

import django_filters

from audit.models import AuditEvent
from gateway.api.filters import IdFilter


class AuditEventFilter(django_filters.FilterSet):
    since = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    target = django_filters.CharFilter(field_name="target_slug", help_text="The target's slug.")
    credential = django_filters.CharFilter(
        field_name="credential_name", help_text="The credential's name at the time of the call."
    )
    credential_id = IdFilter(field_name="credential_id")
    tool = django_filters.CharFilter()
    reason = django_filters.CharFilter(lookup_expr="icontains")
    request_id = django_filters.CharFilter()

    class Meta:
        model = AuditEvent
        fields = [
            "since",
            "until",
            "target",
            "credential",
            "credential_id",
            "tool",
            "decision",
            "reason",
            "kind",
        ]
