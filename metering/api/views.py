"""API views of the metering app: meters (with their current use) and the usage rollups (read-only).
Writes go through metering/services.py, as the CLI's and the admin's do."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from gateway.api.views import caller_tenant
from gateway.api.viewsets import ReadMixin, TenantScopedViewSet, WriteMixin
from metering import services
from metering.api import filters, serializers
from metering.models import Meter, UsageRollup
from metering.runtime import admin_limiter
from metering.selectors import MeterUsage, compile_meter_row, meter_usage_list


def current_use(meters: list[Meter]) -> dict[int, MeterUsage]:
    """Each meter's use now, read in one round trip to the counters."""
    compiled = tuple(compile_meter_row(meter) for meter in meters)
    usages = meter_usage_list(compiled, limiter=admin_limiter(in_gateway_process=True))
    return {usage.meter.id: usage for usage in usages}


class MeterViewSet(ReadMixin, WriteMixin, TenantScopedViewSet):
    """Limits on calls or on values read from responses, per window, with their current use."""

    queryset = Meter.objects.all()
    serializer_class = serializers.MeterSerializer
    filterset_class = filters.MeterFilter

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        context = {**self.get_serializer_context(), "usage": current_use(list(page or []))}
        data = serializers.MeterSerializer(page, many=True, context=context).data
        return self.get_paginated_response(data)

    def get_serializer(self, *args: Any, **kwargs: Any) -> Any:
        instance = args[0] if args else kwargs.get("instance")
        if isinstance(instance, Meter) and instance.pk is not None:
            kwargs["context"] = {**self.get_serializer_context(), "usage": current_use([instance])}
        return super().get_serializer(*args, **kwargs)

    def create_row(self, data: dict[str, Any]) -> Meter:
        return services.meter_create(
            tenant=caller_tenant(self.request, data),
            target=data.get("target"),
            credential=data.get("credential"),
            kind=data.get("kind", Meter.Kind.REQUEST_COUNT),
            window=data.get("window", Meter.Window.MINUTE),
            limit=data["limit"],
            route=data.get("route", ""),
            value_paths=data.get("value_paths", ()),
            fail_mode=data.get("fail_mode", Meter.FailMode.OPEN),
            description=data.get("description", ""),
        )

    def update_row(self, meter: Meter, data: dict[str, Any]) -> Meter:
        if "tenant" in data and data["tenant"].pk != meter.tenant_id:
            raise ValidationError({"tenant": "A meter cannot move to another tenant."})
        return services.meter_update(meter=meter, data=data)

    def delete_row(self, meter: Meter) -> None:
        services.meter_delete(meter=meter)


class UsageRollupViewSet(ReadMixin, TenantScopedViewSet):
    """Usage per hour or UTC day, per tenant, target, credential and tool (read-only)."""

    queryset = UsageRollup.objects.all()
    serializer_class = serializers.UsageRollupSerializer
    filterset_class = filters.UsageRollupFilter
