"""List filters of the core domain's API (django-filter)."""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.db import models

from gateway.models import Credential, Target, Tenant
from policies.models import AllowRule

MAX_ID = 2**63 - 1


class IdFilter(django_filters.NumberFilter):
    """A related row's id as a whole number in the database's range (no 500 for 1.5 or 10**30)."""

    field_class = forms.IntegerField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class IdFilterSet(django_filters.FilterSet):
    """Relations are filtered by id, as plain numbers: a choice of rows would answer 400 for an id that
    does not exist and 200 for another tenant's, telling the two apart."""

    FILTER_DEFAULTS = {
        **django_filters.FilterSet.FILTER_DEFAULTS,
        models.ForeignKey: {"filter_class": IdFilter},
        models.OneToOneField: {"filter_class": IdFilter},
        models.ManyToManyField: {"filter_class": IdFilter},
    }


class TenantFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = Tenant
        fields = ["name"]


class TargetFilter(IdFilterSet):
    slug = django_filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = Target
        fields = ["tenant", "kind", "slug"]


class CredentialFilter(IdFilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains")
    target = IdFilter(field_name="targets")
    include_deactivated = django_filters.BooleanFilter(
        method="_include_deactivated", help_text="Also list deactivated credentials (hidden by default)."
    )

    class Meta:
        model = Credential
        fields = ["tenant", "kind", "name", "prefix", "target"]

    def filter_queryset(self, queryset):  # type: ignore[no-untyped-def]
        if not self.form.cleaned_data.get("include_deactivated"):
            queryset = queryset.filter(deactivated_at__isnull=True)
        return super().filter_queryset(queryset)

    def _include_deactivated(self, queryset, name, value):  # type: ignore[no-untyped-def]
        return queryset


class AllowRuleFilter(IdFilterSet):
    class Meta:
        model = AllowRule
        fields = ["credential", "method"]
