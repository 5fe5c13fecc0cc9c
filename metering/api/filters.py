"""List filters of the metering app's API."""

from __future__ import annotations

import django_filters

from gateway.api.filters import IdFilterSet
from metering.models import Meter, UsageRollup


class MeterFilter(IdFilterSet):
    class Meta:
        model = Meter
        fields = ["tenant", "target", "credential", "kind", "window"]


class UsageRollupFilter(IdFilterSet):
    since = django_filters.IsoDateTimeFilter(field_name="period_start", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="period_start", lookup_expr="lt")

    class Meta:
        model = UsageRollup
        fields = ["tenant", "target", "credential", "tool", "period", "since", "until"]
