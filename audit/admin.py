"""Admin for the audit trail: read-only, nobody adds, changes or deletes an audit event here."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """One row per proxied request, newest first."""

    list_display = [
        "created_at",
        "decision",
        "credential_name",
        "credential_prefix",
        "target",
        "route",
        "status_code",
        "latency_ms",
    ]
    list_filter = ["decision", "tenant", "target"]
    search_fields = ["request_id", "route", "tool", "jsonrpc_method", "credential_name", "credential_prefix"]
    list_select_related = ["target"]
    date_hierarchy = "created_at"
    # Counting a large audit table on every page is slow; the paginator shows "more" instead.
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
