"""Admin for the audit trail: read-only, nobody adds, changes or deletes an audit event here."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString

from audit.models import AuditEvent
from policies.tools import escape_invisible


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """One row per proxied request or tool-definition event, newest first."""

    list_display = [
        "created_at",
        "kind",
        "decision",
        "credential_name",
        "credential_prefix",
        "target",
        "route_shown",
        "status_code",
        "latency_ms",
    ]
    list_filter = ["kind", "decision", "tenant", "target"]
    search_fields = ["request_id", "route", "tool", "jsonrpc_method", "credential_name", "credential_prefix"]
    list_select_related = ["target"]
    date_hierarchy = "created_at"
    # Counting a large audit table on every page is slow; the paginator shows "more" instead.
    show_full_result_count = False
    # Shown through the methods below: a tool's name may hold invisible characters, shown escaped.
    exclude = ["tool", "details"]
    readonly_fields = ["tool_shown", "details_shown"]

    @admin.display(description="route", ordering="route")
    def route_shown(self, event: AuditEvent) -> str:
        return escape_invisible(event.route)  # a tool event's route holds the tool's name

    @admin.display(description="tool")
    def tool_shown(self, event: AuditEvent) -> str:
        return escape_invisible(event.tool)

    @admin.display(description="details")
    def details_shown(self, event: AuditEvent) -> SafeString:
        """``details`` as indented JSON (non-ASCII written as escapes, so nothing hidden is rendered)."""
        return format_html("<pre>{}</pre>", json.dumps(event.details, indent=2, sort_keys=True))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
