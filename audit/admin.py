"""Admin for the audit trail: read-only, nobody adds, changes or deletes an audit event, a seal or a
verification here. The SIEM sinks (secret write-only) and each tenant's retention are configuration,
edited here and recorded in the change log."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from audit.changes import changes_by
from audit.filters import AUDIT_EVENT_FILTERS
from audit.models import AuditEvent, AuditSeal, AuditSettings, AuditVerification, SiemSink, SiemSinkState
from audit.paging import CappedCountPaginator
from audit.selectors import seal_chain_status
from audit.signing import ALGORITHM, public_keys
from gateway.roles import access_for
from gateway.tenant_admin import TenantScopedAdmin
from policies.tools import escape_invisible


class ReadOnlyAdmin(TenantScopedAdmin):
    """Nothing is added, changed or deleted from the admin; each user sees its own tenant's rows."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ChangeLoggedAdmin(TenantScopedAdmin):
    """The admin pages of change-logged models: what they add, change or delete is recorded as made by
    the signed-in user through the admin (audit/changes.py). Bulk deletes go row by row so each row,
    and what it cascades to, is recorded."""

    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        with changes_by_request(request):
            return super().changeform_view(request, *args, **kwargs)

    def changelist_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        with changes_by_request(request):  # actions and list-editable saves run here
            return super().changelist_view(request, *args, **kwargs)

    def delete_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        with changes_by_request(request):
            return super().delete_view(request, *args, **kwargs)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for row in queryset:
            row.delete()


def changes_by_request(request: HttpRequest) -> Any:
    """The change-log context of an admin request: its user, source "admin"."""
    return changes_by(actor=request.user.get_username(), source="admin")


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """One row per proxied request, tool-definition event, admin action or configuration change, newest
    first; filter on kind "Configuration change" for the change log, whose diff each entry shows."""

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
    # Fast on a million events (audit/filters.py, bench/audit_query_bench.py): no filter lists an event
    # column's distinct values, the search matches a request id exactly, only the time sorts, the
    # count stops at 10,000, and no facet counts run.
    list_filter = AUDIT_EVENT_FILTERS
    search_fields = ["request_id__exact"]
    sortable_by = ["created_at"]
    paginator = CappedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_select_related = ["target"]
    # Shown through the methods below: a tool's name may hold invisible characters, shown escaped.
    exclude = ["tool", "details"]
    readonly_fields = ["tool_shown", "changes_shown", "details_shown"]

    @admin.display(description="route", ordering="route")
    def route_shown(self, event: AuditEvent) -> str:
        return escape_invisible(event.route)  # a tool event's route holds the tool's name

    @admin.display(description="tool")
    def tool_shown(self, event: AuditEvent) -> str:
        return escape_invisible(event.tool)

    @admin.display(description="changes")
    def changes_shown(self, event: AuditEvent) -> SafeString | str:
        """A change-log entry's diff as a table: field, before, after (secrets are already masked)."""
        changes = event.details.get("changes") if event.kind == AuditEvent.Kind.CHANGE else None
        if not isinstance(changes, dict):
            return "-"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (name, _shown_value(entry, "before"), _shown_value(entry, "after"))
                for name, entry in sorted(changes.items())
                if isinstance(entry, dict)
            ),
        )
        head = format_html("<tr><th>{}</th><th>{}</th><th>{}</th></tr>", "field", "before", "after")
        return format_html("<table>{}{}</table>", head, rows)

    @admin.display(description="details")
    def details_shown(self, event: AuditEvent) -> SafeString:
        """``details`` as indented JSON (non-ASCII written as escapes, so nothing hidden is rendered)."""
        return format_html("<pre>{}</pre>", json.dumps(event.details, indent=2, sort_keys=True))


def _shown_value(entry: dict[str, Any], side: str) -> str:
    """One side of a changed field: "-" when that side does not exist (created or deleted), else JSON."""
    if side not in entry:
        return "-"
    value = entry[side]
    return escape_invisible(value if isinstance(value, str) else json.dumps(value, sort_keys=True))


@admin.register(AuditSeal)
class AuditSealAdmin(ReadOnlyAdmin):
    """The seals, newest first; above them each tenant's seal age and last verification, and the
    public keys that verify the seals (also at /.well-known/audit-keys)."""

    list_display = [
        "created_at",
        "tenant",
        "sequence",
        "event_count",
        "first_event_id",
        "last_event_id",
        "key_id",
    ]
    list_filter = ["tenant"]
    list_select_related = ["tenant"]
    exclude = ["manifest"]
    show_full_result_count = False

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        context = {
            **(extra_context or {}),
            "chains": [
                chain
                for chain in seal_chain_status(now=timezone.now())
                if access_for(request.user).sees(chain.tenant_id)
            ],
            "audit_keys": public_keys(),
            "audit_key_algorithm": ALGORITHM,
        }
        return super().changelist_view(request, extra_context=context)


@admin.register(AuditVerification)
class AuditVerificationAdmin(ReadOnlyAdmin):
    """Each run of verify_audit per tenant, newest first."""

    list_display = ["verified_at", "tenant", "ok", "seals_checked", "events_checked", "first_problem"]
    list_filter = ["ok", "tenant"]
    list_select_related = ["tenant"]


class SiemSinkForm(forms.ModelForm):  # type: ignore[type-arg]
    """A sink's fields and a write-only secret; checked by the same service as the CLI's."""

    secret = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Webhook only: the HMAC signing secret (16+ characters). Never shown again; leave empty "
        "to keep the current one.",
    )

    class Meta:
        model = SiemSink
        fields = ["tenant", "name", "kind", "settings", "enabled"]

    def _post_clean(self) -> None:
        super()._post_clean()
        from audit.siem.services import siem_sink_prepare

        try:
            siem_sink_prepare(sink=self.instance, secret=self.cleaned_data.get("secret") or None)
        except ValidationError as error:
            self._update_errors(error)


@admin.register(SiemSink)
class SiemSinkAdmin(ChangeLoggedAdmin):
    """Where each tenant's audit events are streamed, and how delivery to each stands."""

    form = SiemSinkForm
    list_display = ["name", "tenant", "kind", "enabled", "delivery", "backlog", "last_success"]
    list_filter = ["kind", "enabled", "tenant"]
    list_select_related = ["tenant", "state"]
    readonly_fields = ["secret_set", "delivery_details"]
    actions = ["retry_now"]

    def save_model(self, request: HttpRequest, obj: SiemSink, form: Any, change: bool) -> None:
        from audit.siem.services import siem_sink_save

        siem_sink_save(sink=obj)

    @admin.display(description="secret")
    def secret_set(self, sink: SiemSink) -> str:
        return "set" if sink.has_secret else "not set"

    @admin.display(description="delivery")
    def delivery(self, sink: SiemSink) -> str:
        state = _state(sink)
        if state is None or not state.failures:
            return "ok"
        return f"failing ({state.failures} attempt(s))"

    @admin.display(description="backlog")
    def backlog(self, sink: SiemSink) -> str:
        state = _state(sink)
        return (
            "-" if state is None else f"{state.backlog}+" if state.backlog >= 10_000 else str(state.backlog)
        )

    @admin.display(description="last delivered")
    def last_success(self, sink: SiemSink) -> Any:
        state = _state(sink)
        return state.last_success_at if state else None

    @admin.display(description="delivery state")
    def delivery_details(self, sink: SiemSink) -> SafeString | str:
        state = _state(sink)
        if state is None:
            return "-"
        rows = (
            ("cursor (last event id passed)", state.cursor),
            ("backlog", state.backlog),
            ("delivered", state.delivered),
            ("failures in a row", state.failures),
            ("last error", state.last_error or "-"),
            ("last delivered", state.last_success_at or "-"),
            ("next attempt", state.next_attempt_at or "now"),
        )
        return format_html("<table>{}</table>", format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows))

    @admin.action(description="Retry the selected sinks now (skip their backoff)")
    def retry_now(self, request: HttpRequest, queryset: QuerySet[SiemSink]) -> None:
        from audit.siem.services import siem_sink_reset_backoff

        for sink in queryset:
            siem_sink_reset_backoff(sink=sink)
        self.message_user(request, "The selected sinks are tried at the next delivery run.", messages.SUCCESS)


def _state(sink: SiemSink) -> SiemSinkState | None:
    try:
        return sink.state
    except SiemSinkState.DoesNotExist:
        return None


@admin.register(AuditSettings)
class AuditSettingsAdmin(ChangeLoggedAdmin):
    """Each tenant's audit retention (empty: keep forever)."""

    list_display = ["tenant", "retention_days"]
    list_select_related = ["tenant"]
