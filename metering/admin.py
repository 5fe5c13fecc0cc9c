"""Admin for meters and usage rollups, and the meter inlines of tenant, target and credential pages.

Each meter row shows its current use and when capacity comes back, read from the live counters
(Redis, or in the embedded default the counters of the gateway process serving this admin).
Resetting a meter's counter is an admin action on the meter list, recorded in the audit trail.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from audit.admin import ChangeLoggedAdmin, ReadOnlyAdmin
from gateway.tenant_admin import TenantScopedMixin
from metering.limiter import MeterStoreUnavailable
from metering.models import Meter, UsageRollup
from metering.runtime import admin_limiter
from metering.selectors import MeterUsage, compile_meter_row, meter_usage_list
from metering.services import meter_reset

_FIELDS = ["kind", "window", "limit", "route", "value_paths", "fail_mode", "description"]


class MeterForm(forms.ModelForm):
    """A meter, its JSON paths typed one per line."""

    value_paths = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 40}),
        help_text="Response value meters: one JSON path per line, e.g. "
        "$.result.structuredContent.usage.total_tokens",
    )

    class Meta:
        model = Meter
        fields = _FIELDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["value_paths"] = "\n".join(self.instance.value_paths)

    def clean_value_paths(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data["value_paths"].splitlines() if line.strip()]


class _TenantFromParentFormSet(BaseInlineFormSet):
    """A meter added on a target or credential page belongs to that object's tenant."""

    def save_new(self, form: forms.ModelForm, commit: bool = True) -> Meter:
        meter = super().save_new(form, commit=False)
        meter.tenant_id = self.instance.tenant_id
        if commit:
            meter.save()
        return meter


def _usage(meter: Meter) -> MeterUsage | None:
    if meter.pk is None:
        return None
    [usage] = meter_usage_list((compile_meter_row(meter),), limiter=admin_limiter(in_gateway_process=True))
    return usage


def current_use(meter: Meter) -> str:
    usage = _usage(meter)
    if usage is None:
        return "-"
    if usage.used is None:
        return f"unknown: {usage.note}"
    return f"{usage.used:g} of {meter.limit:g}"


class MeterInline(TenantScopedMixin, admin.TabularInline):
    """The meters of one object, with their current use."""

    model = Meter
    form = MeterForm
    formset = BaseInlineFormSet
    extra = 0
    fields = [*_FIELDS, "current_use", "room_back_at", "reset_link"]
    readonly_fields = ["current_use", "room_back_at", "reset_link"]

    @admin.display(description="Current use")
    def current_use(self, meter: Meter) -> str:
        return current_use(meter)

    @admin.display(description="Room back at (UTC)")
    def room_back_at(self, meter: Meter) -> str:
        usage = _usage(meter)
        if usage is None or usage.resets_at is None:
            return "-"
        return f"{usage.resets_at:%Y-%m-%d %H:%M:%S}"

    @admin.display(description="Counter")
    def reset_link(self, meter: Meter) -> SafeString | str:
        if meter.pk is None:
            return "-"
        url = reverse("admin:metering_meter_changelist") + f"?id__exact={meter.pk}"
        return format_html('<a href="{}">reset…</a>', url)


class TenantMeterInline(MeterInline):
    """Meters on the whole tenant: every call of every credential counts."""

    fk_name = "tenant"
    verbose_name = "tenant meter"
    verbose_name_plural = "tenant meters (every call of the tenant)"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Meter]:
        return super().get_queryset(request).filter(target__isnull=True, credential__isnull=True)


class TargetMeterInline(MeterInline):
    """Meters on one target: every credential's calls on it count."""

    fk_name = "target"
    formset = _TenantFromParentFormSet
    verbose_name = "target meter"
    verbose_name_plural = "target meters (every call on this target)"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Meter]:
        return super().get_queryset(request).filter(credential__isnull=True)


class CredentialMeterInline(MeterInline):
    """Meters on one credential, optionally only on one of its targets."""

    fk_name = "credential"
    formset = _TenantFromParentFormSet
    fields = ["target", *MeterInline.fields]
    verbose_name = "credential meter"
    verbose_name_plural = "credential meters (this agent's calls)"

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        credential_id = request.resolver_match.kwargs.get("object_id") if request.resolver_match else None
        if db_field.name == "target" and credential_id:
            field.queryset = field.queryset.filter(credentials__id=credential_id)
            field.help_text = "Optional: meter only this credential's calls on one target."
        return field


@admin.register(Meter)
class MeterAdmin(ChangeLoggedAdmin):
    """Every meter; select some to reset their counters (the reset is audited)."""

    form = MeterForm
    list_display = ["name", "tenant", "scope", "kind", "window", "limit", "route", "fail_mode", "current_use"]
    list_filter = ["tenant", "kind", "window", "fail_mode"]
    search_fields = ["tenant__name", "target__slug", "credential__name", "route"]
    list_select_related = ["tenant", "target", "credential"]
    fields = ["tenant", "target", "credential", *_FIELDS]
    actions = ["reset_counters"]

    @admin.display(description="Current use")
    def current_use(self, meter: Meter) -> str:
        return current_use(meter)

    @admin.action(description="Reset the counters of the selected meters", permissions=["change"])
    def reset_counters(self, request: HttpRequest, queryset: QuerySet[Meter]) -> None:
        limiter = admin_limiter(in_gateway_process=True)
        if limiter is None:
            self.message_user(request, "The counters cannot be reached from here.", messages.ERROR)
            return
        actor = f"admin {request.user.get_username()!r}"
        for meter in queryset:
            try:
                used = meter_reset(meter=meter, actor=actor, limiter=limiter)
            except MeterStoreUnavailable as exc:
                self.message_user(request, f"Meter {meter.name} not reset: {exc}", messages.ERROR)
                continue
            self.log_change(
                request, meter, f"Reset counter (was {used:g})" if used is not None else "Reset counter"
            )
            self.message_user(request, f"Meter {meter.name}: counter reset.", messages.SUCCESS)


@admin.register(UsageRollup)
class UsageRollupAdmin(ReadOnlyAdmin):
    """Hourly and daily usage, recomputed from the audit trail; read-only."""

    list_display = [
        "period",
        "period_start",
        "tenant",
        "target",
        "credential",
        "tool",
        "calls",
        "denials",
        "rate_limited",
        "errors",
        "latency_p50_ms",
        "latency_p95_ms",
    ]
    list_filter = ["period", "tenant", "target"]
    search_fields = ["tool", "credential__name"]
    list_select_related = ["tenant", "target", "credential"]
    date_hierarchy = "period_start"
