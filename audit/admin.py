"""Admin for the audit trail: read-only, nobody adds, changes or deletes an audit event, a seal or a
verification here. The SIEM sinks (secret write-only) and each tenant's retention are configuration,
edited here and recorded in the change log."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from audit.changes import changes_by
from audit.exports.services import audit_export_request, audit_export_retry
from audit.filters import AUDIT_EVENT_FILTERS
from audit.models import (
    AuditEvent,
    AuditExport,
    AuditSeal,
    AuditSettings,
    AuditVerification,
    SiemSink,
    SiemSinkState,
)
from audit.paging import CappedCountPaginator
from audit.selectors import export_visible_to, exports_visible_to, seal_chain_status
from audit.signing import ALGORITHM, public_keys
from audit.views import export_download
from gateway.models import Tenant
from gateway.roles import access_for
from gateway.tenant_admin import TenantScopedAdmin, scoped_choices
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


class ExportRequestForm(forms.Form):
    """What a reviewer asks for: a tenant, a period and a format."""

    tenant = forms.ModelChoiceField(queryset=Tenant.objects.order_by("name"))
    since = forms.DateTimeField(help_text="First moment, UTC unless a zone is given (2026-01-01 00:00).")
    until = forms.DateTimeField(help_text="End of the period, excluded.")
    format = forms.ChoiceField(choices=AuditExport.Format.choices)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and since >= until:
            raise forms.ValidationError("The period must end after it starts.")
        return data


@admin.register(AuditExport)
class AuditExportAdmin(ReadOnlyAdmin):
    """Audit exports: a form to request one (tenant, period, format), the list with each one's progress,
    and its file and signed manifest to download once ready, for the users ``export_visible_to``
    allows. The file is written in the background (audit/exports/services.py)."""

    list_display = [
        "requested_at",
        "tenant",
        "format",
        "period",
        "requested_by",
        "progress_shown",
        "download",
    ]
    list_filter = ["state", "format", "tenant"]
    list_select_related = ["tenant"]
    change_list_template = "admin/audit/auditexport/change_list.html"
    actions = ["run_again"]

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return True  # the rows an action gets are get_queryset's: only exports the user may see

    @admin.action(description="Run the selected failed or stalled exports again", permissions=["retry"])
    def run_again(self, request: HttpRequest, queryset: QuerySet[AuditExport]) -> None:
        now = timezone.now()
        queued = sum(audit_export_retry(export=export, now=now) for export in queryset)
        self.message_user(request, f"Queued {queued} export(s) again (only failed or stalled ones are).")

    def get_queryset(self, request: HttpRequest) -> QuerySet[AuditExport]:
        return exports_visible_to(request.user).select_related("tenant")

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path("request/", view(self.request_view), name="audit_auditexport_request"),
            path("<int:export_id>/file/", view(self.file_view), name="audit_auditexport_file"),
            path("<int:export_id>/manifest/", view(self.manifest_view), name="audit_auditexport_manifest"),
            *super().get_urls(),
        ]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        busy = self.get_queryset(request).filter(
            state__in=[AuditExport.State.PENDING, AuditExport.State.RUNNING]
        )
        context = {**(extra_context or {}), "exports_running": busy.exists()}
        return super().changelist_view(request, extra_context=context)

    @admin.display(description="period (UTC)")
    def period(self, export: AuditExport) -> str:
        return f"{export.since:%Y-%m-%d %H:%M} to {export.until:%Y-%m-%d %H:%M}"

    @admin.display(description="progress")
    def progress_shown(self, export: AuditExport) -> SafeString:
        if export.state == AuditExport.State.FAILED:
            return format_html("failed: {}", export.error)
        if export.is_stalled(timezone.now()):
            return format_html("stalled at {}% since {} (run it again)", export.progress, export.updated_at)
        if export.state == AuditExport.State.READY:
            return format_html("ready: {} events, {} bytes", export.events, export.size_bytes)
        return format_html(
            '<progress max="100" value="{}"></progress> {}% ({} events)',
            export.progress,
            export.progress,
            export.events,
        )

    @admin.display(description="download")
    def download(self, export: AuditExport) -> SafeString | str:
        if export.state != AuditExport.State.READY:
            return "-"
        return format_html(
            '<a href="{}">{}</a> · <a href="{}">manifest</a>',
            reverse("admin:audit_auditexport_file", args=[export.pk]),
            export.file_name,
            reverse("admin:audit_auditexport_manifest", args=[export.pk]),
        )

    def request_view(self, request: HttpRequest) -> HttpResponse:
        """GET: the form; POST: record the export and queue it, then back to the list. Offered to whoever
        may add exports (a superuser, a tenant admin or a reviewer), for their own tenants only."""
        if not request.user.has_perm("audit.add_auditexport"):
            raise PermissionDenied
        form = ExportRequestForm(request.POST or None)
        form.fields["tenant"].queryset = scoped_choices(request, Tenant.objects.order_by("name"))
        if request.method == "POST" and form.is_valid():
            export = audit_export_request(
                tenant=form.cleaned_data["tenant"],
                since=form.cleaned_data["since"],
                until=form.cleaned_data["until"],
                format=form.cleaned_data["format"],
                requested_by=request.user.get_username(),
            )
            self.message_user(request, f"Export #{export.pk} requested: it is written in the background.")
            return redirect("admin:audit_auditexport_changelist")
        context = {
            **self.admin_site.each_context(request),
            "title": "Request an audit export",
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/audit/auditexport/request.html", context)

    def file_view(self, request: HttpRequest, export_id: int) -> FileResponse:
        return export_download(self._visible(request, export_id))

    def manifest_view(self, request: HttpRequest, export_id: int) -> FileResponse:
        return export_download(self._visible(request, export_id), manifest=True)

    def _visible(self, request: HttpRequest, export_id: int) -> AuditExport:
        """The export, if this user may see it; 404 otherwise (never a hint)."""
        export = AuditExport.objects.filter(pk=export_id).first()
        if export is None or not export_visible_to(request.user, export):
            raise Http404("No such export.")
        return export
