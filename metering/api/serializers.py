"""Serializers of the metering app's API: meters (with their current use) and usage rollups."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from gateway.api.fields import ScopedRelatedField
from gateway.models import Credential, Target, Tenant
from metering.compiler import whole
from metering.models import Meter, UsageRollup


class MeterUseSerializer(serializers.Serializer):  # type: ignore[type-arg]
    used = serializers.FloatField(allow_null=True, help_text="Use in the current window; null: unknown.")
    resets_at = serializers.DateTimeField(allow_null=True)
    note = serializers.CharField(help_text="Why the use is unknown, when it is.")


class MeterSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """A meter; ``current`` is its use now (read from the counters the gateway enforces)."""

    tenant = ScopedRelatedField(queryset=Tenant.objects.all(), tenant_path="pk", required=False)
    target = ScopedRelatedField(queryset=Target.objects.all(), required=False, allow_null=True)
    credential = ScopedRelatedField(queryset=Credential.objects.all(), required=False, allow_null=True)
    value_paths = serializers.ListField(
        child=serializers.CharField(max_length=1000), max_length=50, required=False
    )
    limit = serializers.FloatField(min_value=0, max_value=1e15)
    current = serializers.SerializerMethodField()

    class Meta:
        model = Meter
        fields = [
            "id", "name", "tenant", "target", "credential", "scope", "kind", "window", "limit", "route",
            "value_paths", "fail_mode", "description", "current", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["name", "scope", "created_at", "updated_at"]

    @extend_schema_field(MeterUseSerializer(allow_null=True))
    def get_current(self, meter: Meter) -> dict[str, Any] | None:
        usage = self.context.get("usage", {}).get(meter.pk)
        if usage is None:
            return None
        return {
            "used": None if usage.used is None else whole(round(usage.used, 6)),
            "resets_at": usage.resets_at,
            "note": usage.note,
        }


class UsageRollupSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    class Meta:
        model = UsageRollup
        fields = [
            "id", "period", "period_start", "tenant", "target", "credential", "tool", "calls", "denials",
            "rate_limited", "errors", "response_values", "latency_p50_ms", "latency_p95_ms",
        ]  # fmt: skip
        read_only_fields = fields
