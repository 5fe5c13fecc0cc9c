"""List filters of the core domain's API (django-filter)."""

from __future__ import annotations

import django_filters

from gateway.models import Credential, Target, Tenant
from policies.models import AllowRule


class TenantFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = Tenant
        fields = ["name"]


class TargetFilter(django_filters.FilterSet):
    slug = django_filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = Target
        fields = ["tenant", "kind", "slug"]


class CredentialFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains")
    target = django_filters.NumberFilter(field_name="targets")
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


class AllowRuleFilter(django_filters.FilterSet):
    class Meta:
        model = AllowRule
        fields = ["credential", "method"]
