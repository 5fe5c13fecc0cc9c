"""The audit event list's filters: the admin's (time, target, credential, tool, decision, reason, kind)."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet

from audit.models import AuditEvent, SiemSink
from audit.selectors import audit_events_filtered
from gateway.api.filters import IdFilter, IdFilterSet
from gateway.models import Target


class AuditEventFilter(django_filters.FilterSet):
    since = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    target = django_filters.CharFilter(method="filter_target", help_text="The target's slug.")
    credential = django_filters.CharFilter(
        field_name="credential_name", help_text="The credential's name at the time of the call."
    )
    credential_id = IdFilter(field_name="credential_id")
    tool = django_filters.CharFilter()
    reason = django_filters.CharFilter(method="filter_reason", help_text="A part of the reason, any case.")
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

    def filter_target(self, queryset: QuerySet[AuditEvent], name: str, value: str) -> QuerySet[AuditEvent]:
        """By the target's id (the indexed column), its slug looked up once; events of a deleted target
        keep their slug and are still found by it."""
        target_id = Target.objects.filter(slug=value).values_list("pk", flat=True).first()
        if target_id is None:
            return queryset.filter(target_slug=value)
        return audit_events_filtered(queryset, target_id=target_id)

    def filter_reason(self, queryset: QuerySet[AuditEvent], name: str, value: str) -> QuerySet[AuditEvent]:
        """As the admin's reason filter (audit/selectors.py): served by the index of events with a reason."""
        return audit_events_filtered(queryset, reason=value)


class SiemSinkFilter(IdFilterSet):
    class Meta:
        model = SiemSink
        fields = ["tenant", "kind", "enabled"]
