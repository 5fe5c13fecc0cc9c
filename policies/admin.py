"""Admin for allow-rules (standalone, and inline on the credential page: see gateway/admin.py), response
filters and redaction policies (validated by the models' ``clean()``, as the services do)."""

from __future__ import annotations

import re

from django import forms
from django.contrib import admin

from policies.models import AllowRule, Filter, RedactionPolicy

_METHOD = re.compile(r"^(\*|[A-Z]+)$")


class AllowRuleForm(forms.ModelForm):
    """Normalises the method as ``allow_rule_create`` does and refuses routes that can never match."""

    class Meta:
        model = AllowRule
        fields = ["credential", "method", "path", "description", "order"]

    def clean_method(self) -> str:
        method = self.cleaned_data["method"].strip().upper()
        if not _METHOD.match(method):
            raise forms.ValidationError("Enter an HTTP method such as POST, or * for any method.")
        return method

    def clean_path(self) -> str:
        path = self.cleaned_data["path"].strip()
        if not path.startswith("/"):
            raise forms.ValidationError("A path glob starts with /, e.g. /tools/search or /tools/*.")
        return path


class AllowRuleInline(admin.TabularInline):
    """The rules of one credential, in the order they are matched."""

    model = AllowRule
    form = AllowRuleForm
    fields = ["order", "method", "path", "description"]
    ordering = ["order", "id"]
    extra = 1


@admin.register(AllowRule)
class AllowRuleAdmin(admin.ModelAdmin):
    """Every allow-rule, across credentials."""

    form = AllowRuleForm
    list_display = ["__str__", "credential", "credential__tenant", "order", "description"]
    list_filter = ["method", "credential__tenant"]
    search_fields = ["path", "description", "credential__name", "credential__prefix"]
    list_select_related = ["credential__tenant"]
    autocomplete_fields = ["credential"]
    ordering = ["credential__tenant__name", "credential__name", "order", "id"]


class ProtectionAdmin(admin.ModelAdmin):
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
