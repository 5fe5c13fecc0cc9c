"""Serializers of the policies app's API: response filters, redaction policies and pinned tools."""

from __future__ import annotations

from rest_framework import serializers

from gateway.api.fields import ScopedRelatedField
from gateway.models import Credential, Target, Tenant
from policies.admin import tool_review
from policies.models import Filter, PinnedTool, RedactionPolicy

SCOPE_FIELDS = ["id", "tenant", "target", "credential", "route", "mode", "order"]


class ScopeSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """Where a protection applies: the tenant, or one of its targets or credentials (and a route)."""

    tenant = ScopedRelatedField(queryset=Tenant.objects.all(), tenant_path="pk", required=False)
    target = ScopedRelatedField(queryset=Target.objects.all(), required=False, allow_null=True)
    credential = ScopedRelatedField(queryset=Credential.objects.all(), required=False, allow_null=True)


class FilterSerializer(ScopeSerializer):
    paths = serializers.ListField(
        child=serializers.CharField(max_length=1000), max_length=100, help_text='e.g. ["$..id", "$.owner"]'
    )

    class Meta:
        model = Filter
        fields = [*SCOPE_FIELDS, "paths"]
        extra_kwargs = {"order": {"max_value": 1_000_000}}


class RedactionPolicySerializer(ScopeSerializer):
    detectors = serializers.ListField(
        child=serializers.CharField(max_length=100), max_length=100, help_text='e.g. ["email", "card"]'
    )

    class Meta:
        model = RedactionPolicy
        fields = [*SCOPE_FIELDS, "detectors", "action"]
        extra_kwargs = {"order": {"max_value": 1_000_000}}


class PinnedToolSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """A tool as the gateway pinned it; which definition is served and which approved, by hash."""

    class Meta:
        model = PinnedTool
        fields = [
            "id", "target", "name", "state", "served_hash", "approved_hash", "findings", "first_seen_at",
            "changed_at", "approved_at", "approved_by",
        ]  # fmt: skip
        read_only_fields = fields


class PinnedToolDetailSerializer(PinnedToolSerializer):
    """With the served definition and its diff from the approved one, as the approval page shows them
    (invisible characters escaped)."""

    served_definition = serializers.SerializerMethodField()
    diff = serializers.SerializerMethodField()

    class Meta(PinnedToolSerializer.Meta):
        fields = [*PinnedToolSerializer.Meta.fields, "served_definition", "diff"]
        read_only_fields = fields

    def get_served_definition(self, pin: PinnedTool) -> list[str]:
        return tool_review(pin).served

    def get_diff(self, pin: PinnedTool) -> list[str]:
        return [line for _, line in tool_review(pin).diff]


class ToolApprovalSerializer(serializers.Serializer):  # type: ignore[type-arg]
    served_hash = serializers.CharField(
        max_length=64, help_text="The served_hash of the definition you reviewed; 400 if it changed since."
    )
