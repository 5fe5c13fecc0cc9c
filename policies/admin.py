"""Admin for allow-rules: standalone, and inline on the credential page (see gateway/admin.py)."""

from __future__ import annotations

import re

from django import forms
from django.contrib import admin

from policies.models import AllowRule

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
