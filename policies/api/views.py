"""API views of the policies app: response filters, redaction policies, and pinned tools with their
``approve`` action. Writes go through policies/services.py, as the CLI's and the admin's do."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from gateway.api.views import caller_tenant
from gateway.api.viewsets import ReadMixin, TenantScopedViewSet, WriteMixin
from policies import services
from policies.api import filters, serializers
from policies.models import Filter, PinnedTool, RedactionPolicy


def _keep_tenant(row: Filter | RedactionPolicy, data: dict[str, Any]) -> None:
    if "tenant" in data and data["tenant"].pk != row.tenant_id:
        raise ValidationError({"tenant": "A protection cannot move to another tenant."})


class FilterViewSet(ReadMixin, WriteMixin, TenantScopedViewSet):
    """Response filters: JSON paths deleted from results, scoped to a tenant, target or credential."""

    queryset = Filter.objects.all()
    serializer_class = serializers.FilterSerializer
    filterset_class = filters.FilterFilter

    def create_row(self, data: dict[str, Any]) -> Filter:
        return services.filter_create(
            tenant=caller_tenant(self.request, data),
            paths=data["paths"],
            target=data.get("target"),
            credential=data.get("credential"),
            route=data.get("route", ""),
            mode=data.get("mode", "enforce"),
            order=data.get("order"),
        )

    def update_row(self, row: Filter, data: dict[str, Any]) -> Filter:
        _keep_tenant(row, data)
        return services.filter_update(row=row, data=data)

    def delete_row(self, row: Filter) -> None:
        services.filter_delete(row=row)


class RedactionPolicyViewSet(ReadMixin, WriteMixin, TenantScopedViewSet):
    """Redaction policies: detectors and what is done with what they find. A scope has one policy:
    creating one for a scope that has one already changes that one."""

    queryset = RedactionPolicy.objects.all()
    serializer_class = serializers.RedactionPolicySerializer
    filterset_class = filters.RedactionPolicyFilter

    def create_row(self, data: dict[str, Any]) -> RedactionPolicy:
        row = services.redaction_policy_set(
            tenant=caller_tenant(self.request, data),
            detectors=data["detectors"],
            action=data.get("action", RedactionPolicy.Action.MASK),
            target=data.get("target"),
            credential=data.get("credential"),
            route=data.get("route", ""),
            mode=data.get("mode", "enforce"),
        )
        if "order" in data:
            services.redaction_policy_update(row=row, data={"order": data["order"]})
        return row

    def update_row(self, row: RedactionPolicy, data: dict[str, Any]) -> RedactionPolicy:
        _keep_tenant(row, data)
        return services.redaction_policy_update(row=row, data=data)

    def delete_row(self, row: RedactionPolicy) -> None:
        services.redaction_policy_delete(row=row)


class PinnedToolViewSet(ReadMixin, TenantScopedViewSet):
    """Tools as the gateway pinned them. A held tool (``pending`` or ``changed``) is approved with
    ``approve``, naming the ``served_hash`` reviewed: if the upstream served another one since, nothing
    is approved (400)."""

    queryset = PinnedTool.objects.select_related("target")
    serializer_class = serializers.PinnedToolSerializer
    filterset_class = filters.PinnedToolFilter
    tenant_path = "target__tenant"
    change_actions = ("approve",)

    def get_serializer_class(self) -> Any:
        if self.action in ("retrieve", "approve"):
            return serializers.PinnedToolDetailSerializer
        return serializers.PinnedToolSerializer

    @extend_schema(
        request=serializers.ToolApprovalSerializer, responses={200: serializers.PinnedToolDetailSerializer}
    )
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str | None = None) -> Response:
        """Approve the definition now served, so agents see and may call the tool again."""
        approval = serializers.ToolApprovalSerializer(data=request.data)
        approval.is_valid(raise_exception=True)
        with transaction.atomic():
            pin = services.tool_approve(
                pin=self.get_object(),
                actor=request.user.get_username(),
                served_hash=approval.validated_data["served_hash"],
            )
        pin = self.get_queryset().get(pk=pin.pk)
        return self.tagged(Response(self.get_serializer(pin).data), pin)
