"""List filters of the policies app's API."""

from __future__ import annotations

import django_filters

from gateway.api.filters import IdFilter, IdFilterSet
from policies.models import Filter, PinnedTool, RedactionPolicy


class FilterFilter(IdFilterSet):
    class Meta:
        model = Filter
        fields = ["tenant", "target", "credential", "mode"]


class RedactionPolicyFilter(IdFilterSet):
    class Meta:
        model = RedactionPolicy
        fields = ["tenant", "target", "credential", "mode", "action"]


class PinnedToolFilter(IdFilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains")
    tenant = IdFilter(field_name="target__tenant")

    class Meta:
        model = PinnedTool
        fields = ["target", "state", "name", "tenant"]
