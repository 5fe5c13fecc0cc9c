"""Admin for allow-rules (standalone, and inline on the credential page: see gateway/admin.py), response
filters and redaction policies (validated by the models' ``clean()``, as the services do), and pinned
tool definitions, reviewed and approved here through ``policies.services.tool_approve``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from audit.admin import ChangeLoggedAdmin, changes_by_request
from gateway.models import Target
from gateway.tenant_admin import TenantScopedMixin
from policies.models import AllowRule, Filter, PinnedTool, RedactionPolicy
from policies.services import tool_approve
from policies.tools import ToolDefinitionError, definition_diff, escape_invisible
from policies.tools.definitions import MAX_DIFF_LINES, review_lines


class AllowRuleForm(forms.ModelForm):
    """A rule's form; AllowRule.clean normalises the method and refuses routes that can never match."""

    class Meta:
        model = AllowRule
        fields = ["credential", "method", "path", "description", "order"]

    # The method and path checks are AllowRule.clean's (the model's full_clean runs on save), stated once.


class AllowRuleInline(TenantScopedMixin, admin.TabularInline):
    """The rules of one credential, in the order they are matched."""

    tenant_path = "credential__tenant"

    model = AllowRule
    form = AllowRuleForm
    fields = ["order", "method", "path", "description"]
    ordering = ["order", "id"]
    extra = 1


@admin.register(AllowRule)
class AllowRuleAdmin(ChangeLoggedAdmin):
    """Every allow-rule, across credentials."""

    tenant_path = "credential__tenant"

    form = AllowRuleForm
    list_display = ["__str__", "credential", "credential__tenant", "order", "description"]
    list_filter = ["method", "credential__tenant"]
    search_fields = ["path", "description", "credential__name", "credential__prefix"]
    list_select_related = ["credential__tenant"]
    autocomplete_fields = ["credential"]
    ordering = ["credential__tenant__name", "credential__name", "order", "id"]


class ProtectionAdmin(ChangeLoggedAdmin):
    """Shared by filters and redaction policies: listed by tenant, with scope, order and mode."""

    list_filter = ["mode", "tenant"]
    list_select_related = ["tenant", "target", "credential"]
    autocomplete_fields = ["credential"]
    ordering = ["tenant__name", "order", "id"]

    @admin.display(description="scope")
    def scope(self, row: Filter | RedactionPolicy) -> str:
        return row.scope_label


@admin.register(Filter)
class FilterAdmin(ProtectionAdmin):
    """Response filters: JSON paths deleted from results (counted only, in monitor mode)."""

    list_display = ["id", "tenant", "scope", "route", "paths", "order", "mode"]
    fields = ["tenant", "target", "credential", "route", "paths", "mode", "order"]


@admin.register(RedactionPolicy)
class RedactionPolicyAdmin(ProtectionAdmin):
    """Redaction policies: detectors and the action taken on what they find."""

    list_display = ["id", "tenant", "scope", "route", "detectors", "action", "order", "mode"]
    fields = ["tenant", "target", "credential", "route", "detectors", "action", "mode", "order"]


@dataclass(frozen=True, slots=True)
class ToolReview:
    """What the approval page shows of a pin, every string with its invisible characters escaped."""

    served: list[str] = field(default_factory=list)
    served_left_out: int = 0
    #: (CSS class, line) of the unified diff from the approved definition to the served one.
    diff: list[tuple[str, str]] = field(default_factory=list)
    findings: list[dict[str, str]] = field(default_factory=list)
    error: str = ""


def tool_review(pin: PinnedTool) -> ToolReview:
    """Lay out ``pin``'s served definition, its diff from the approved one, and its findings for review."""
    findings = [
        {
            key: escape_invisible(str(finding.get(key, "")))
            for key in ("kind", "location", "excerpt", "detail")
        }
        for finding in pin.findings or []
        if isinstance(finding, dict)
    ]
    try:
        served, approved = pin.served_tool(), pin.approved_tool()
    except ToolDefinitionError as error:
        return ToolReview(findings=findings, error=escape_invisible(str(error)))
    lines = review_lines(served)
    diff = definition_diff(approved, served) if approved is not None else []
    return ToolReview(
        served=[escape_invisible(line) for line in lines[:MAX_DIFF_LINES]],
        served_left_out=max(0, len(lines) - MAX_DIFF_LINES),
        diff=[(_diff_class(line), escape_invisible(line)) for line in diff],
        findings=findings,
    )


def _diff_class(line: str) -> str:
    if line.startswith(("+++", "---")):
        return "diff-file"
    if line.startswith("@@"):
        return "diff-hunk"
    return {"+": "diff-add", "-": "diff-del"}.get(line[:1], "")


def pinned_tools_link(target: Target) -> SafeString:
    """``3 tools: 2 approved, 1 held for approval``, linking to the target's pinned tools."""
    counts = dict(
        PinnedTool.objects.filter(target=target).values_list("state").annotate(n=Count("id")).order_by()
    )
    total = sum(counts.values())
    held = total - counts.get(PinnedTool.State.APPROVED, 0)
    url = reverse("admin:policies_pinnedtool_changelist") + f"?target__id__exact={target.pk}"
    summary = f"{total} tool{'s' if total != 1 else ''}: {total - held} approved, {held} held for approval"
    return format_html('<a href="{}">{}</a>', url, summary)


PIN_FIELDS = (
    "target",
    "tool",
    "state",
    "served_hash",
    "approved_hash",
    "first_seen_at",
    "changed_at",
    "approved_at",
    "approved_by",
)


@admin.register(PinnedTool)
class PinnedToolAdmin(ChangeLoggedAdmin):
    """Pinned tool definitions: read-only, except that an admin with the change permission approves the
    definition a target now serves, after seeing why it was held and what changed."""

    tenant_path = "target__tenant"

    list_display = ["tool", "target", "state", "findings_count", "changed_at", "approved_by"]
    list_filter = ["state", "target"]
    search_fields = ["name"]
    list_select_related = ["target"]
    ordering = ["target__slug", "name"]
    fields = PIN_FIELDS
    readonly_fields = PIN_FIELDS
    actions = ["approve_selected"]

    @admin.display(description="tool", ordering="name")
    def tool(self, pin: PinnedTool) -> str:
        return escape_invisible(pin.name)

    @admin.display(description="findings")
    def findings_count(self, pin: PinnedTool) -> int:
        return len(pin.findings or [])

    def get_queryset(self, request: HttpRequest) -> QuerySet[PinnedTool]:
        queryset = super().get_queryset(request)
        match = request.resolver_match
        if match is not None and match.url_name == "policies_pinnedtool_changelist":
            return queryset.defer("served_definition", "approved_definition")  # the list shows neither
        return queryset

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # pins are recorded by the gateway when an agent lists the tools

    def has_change_permission(self, request: HttpRequest, obj: PinnedTool | None = None) -> bool:
        return False  # the page is read-only; approving is its one write (has_approve_permission)

    def has_delete_permission(self, request: HttpRequest, obj: PinnedTool | None = None) -> bool:
        return False  # a deleted pin would be new again, and approved on sight by a target that allows it

    def has_approve_permission(self, request: HttpRequest, obj: PinnedTool | None = None) -> bool:
        """Approving is changing the pin: it needs the model's change permission."""
        return request.user.has_perm("policies.change_pinnedtool")

    def get_urls(self) -> list[URLPattern]:
        approve = path(
            "<path:object_id>/approve/",
            self.admin_site.admin_view(self.approve_view),
            name="policies_pinnedtool_approve",
        )
        return [approve, *super().get_urls()]

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: PinnedTool | None = None,
    ) -> HttpResponse:
        if obj is not None:
            context["review"] = tool_review(obj)
            context["can_approve"] = obj.state != PinnedTool.State.APPROVED and self.has_approve_permission(
                request, obj
            )
            context["approve_url"] = reverse("admin:policies_pinnedtool_approve", args=[obj.pk])
        return super().render_change_form(request, context, add, change, form_url, obj)

    def approve_view(self, request: HttpRequest, object_id: str) -> HttpResponseBase:
        """POST: approve the definition the page showed (its hash is in the form), if it is still served."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        pin = self.get_object(request, unquote(object_id))
        if pin is None:
            raise Http404("No such pinned tool.")
        if not self.has_approve_permission(request, pin):
            raise PermissionDenied
        reviewed = request.POST.get("served_hash", "")
        if not reviewed:
            self.message_user(request, "The form did not say which definition was reviewed.", messages.ERROR)
        else:
            with changes_by_request(request):
                self._approve(request, pin, reviewed)
        return redirect("admin:policies_pinnedtool_change", pin.pk)

    @admin.action(description="Approve the definitions the selected tools now serve", permissions=["approve"])
    def approve_selected(self, request: HttpRequest, queryset: QuerySet[PinnedTool]) -> None:
        held = [pin for pin in queryset.select_related("target") if pin.state != PinnedTool.State.APPROVED]
        approved = sum(self._approve(request, pin, pin.served_hash, quiet=True) for pin in held)
        self.message_user(request, f"Approved {approved} tool definition(s).", messages.SUCCESS)

    def _approve(self, request: HttpRequest, pin: PinnedTool, reviewed: str, *, quiet: bool = False) -> bool:
        """Approve through the service; a definition changed since ``reviewed`` is refused with a message."""
        try:
            pin = tool_approve(pin=pin, actor=request.user.get_username(), served_hash=reviewed)
        except ValidationError as error:
            self.message_user(request, escape_invisible(" ".join(error.messages)), messages.ERROR)
            return False
        self.log_change(request, pin, f"Approved definition {pin.approved_hash[:12]}.")
        if not quiet:
            name = escape_invisible(pin.name)
            text = f"Approved tool “{name}” of {pin.target}: definition {pin.approved_hash[:12]}."
            self.message_user(request, text, messages.SUCCESS)
        return True
