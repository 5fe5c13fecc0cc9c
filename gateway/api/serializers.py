"""Serializers of the core domain: tenants, targets (the upstream secret write-only), credentials
(tokens never shown but once, by the view) and their allow-rules. They shape and type-check the
input; the rules themselves are checked by the services and models."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from gateway.api.fields import ScopedRelatedField
from gateway.models import Credential, Target, Tenant
from policies.models import AllowRule


class LinesField(serializers.ListField):  # type: ignore[type-arg]
    """A list of strings stored one per line."""

    def to_representation(self, data: Any) -> list[str]:
        return [line.strip() for line in str(data or "").splitlines() if line.strip()]


class TenantSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    class Meta:
        model = Tenant
        fields = ["id", "name", "created_at"]
        # Uniqueness is the service's (model's) check: one statement of it, and one error shape.
        extra_kwargs = {"name": {"validators": []}}


class TargetSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    tenant = ScopedRelatedField(queryset=Tenant.objects.all(), tenant_path="pk", required=False)
    auth_secret = serializers.CharField(
        write_only=True,
        required=False,
        max_length=4000,
        trim_whitespace=False,
        help_text="The upstream secret: accepted, encrypted, never shown again (see has_secret).",
    )
    has_secret = serializers.BooleanField(source="has_upstream_secret", read_only=True)
    allowed_origins = LinesField(child=serializers.CharField(max_length=500), required=False, max_length=100)
    trusted_url_hosts = LinesField(
        child=serializers.CharField(max_length=253), required=False, max_length=100
    )

    class Meta:
        model = Target
        fields = [
            "id", "tenant", "slug", "kind", "upstream_url", "auth_type", "auth_header_name", "auth_secret",
            "has_secret", "timeout_seconds", "allowed_origins", "hold_new_tools", "validate_arguments",
            "trusted_url_hosts", "created_at", "updated_at",
        ]  # fmt: skip
        extra_kwargs = {"slug": {"validators": []}, "timeout_seconds": {"max_value": 3600}}


class AllowRuleSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    credential = ScopedRelatedField(queryset=Credential.objects.all())

    class Meta:
        model = AllowRule
        fields = ["id", "credential", "method", "path", "description", "order"]
        extra_kwargs = {"order": {"max_value": 1_000_000}}


class RuleInputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """An allow-rule given with a new credential."""

    method = serializers.CharField(max_length=10)
    path = serializers.CharField(max_length=1000)


class CredentialRuleSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    class Meta:
        model = AllowRule
        fields = ["id", "method", "path", "description", "order"]


JWT_FIELDS = (
    "jwt_issuer", "jwt_audience", "jwt_subject", "jwt_subject_claim", "jwt_leeway_seconds", "jwt_public_key",
    "jwt_jwks_url",
)  # fmt: skip


class CredentialSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    tenant = ScopedRelatedField(queryset=Tenant.objects.all(), tenant_path="pk", required=False)
    targets = ScopedRelatedField(queryset=Target.objects.all(), many=True, required=False)
    rules = CredentialRuleSerializer(many=True, read_only=True)
    allow = RuleInputSerializer(
        many=True,
        write_only=True,
        required=False,
        max_length=200,
        help_text="Allow-rules of a new credential.",
    )
    jwt_hs256_secret = serializers.CharField(
        write_only=True, required=False, max_length=4000, trim_whitespace=False, allow_blank=True
    )
    has_hs256_secret = serializers.BooleanField(read_only=True)
    status = serializers.CharField(read_only=True)

    class Meta:
        model = Credential
        fields = [
            "id", "tenant", "name", "kind", "prefix", "status", "targets", "rules", "allow", "expires_at",
            "created_at", "revoked_at", "deactivated_at", "last_used_at", *JWT_FIELDS, "jwt_hs256_secret",
            "has_hs256_secret",
        ]  # fmt: skip
        read_only_fields = ["prefix", "created_at", "revoked_at", "deactivated_at", "last_used_at"]
        validators: list[Any] = []

    def validate_kind(self, value: str) -> str:
        if self.instance is not None and value != self.instance.kind:
            raise serializers.ValidationError("A credential's kind cannot change: create another one.")
        return value


class IssuedCredentialSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """A credential with its token: the only time the token is ever shown."""

    token = serializers.CharField(help_text="Shown once: store it now.")
    credential = CredentialSerializer()


class StatusSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """An action that takes no input."""
