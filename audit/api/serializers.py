"""Serializers of the audit app's API: audit events (read-only), SIEM sinks and audit settings."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from audit.models import AuditEvent, SiemSink
from gateway.api.fields import ScopedRelatedField
from gateway.models import Tenant


class AuditEventSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    class Meta:
        model = AuditEvent
        fields = [
            "id", "event_id", "created_at", "request_id", "kind", "tenant", "target", "target_slug",
            "credential", "credential_name", "credential_prefix", "http_method", "path", "route",
            "jsonrpc_method", "tool", "jsonrpc_id", "session_id", "decision", "reason", "status_code",
            "upstream_status", "latency_ms", "request_bytes", "response_bytes", "client_ip", "meter_notes",
            "response_values", "protections", "details",
        ]  # fmt: skip
        read_only_fields = fields


def _delivery(field: Any, name: str) -> Any:
    """A read-only field of where delivery to the sink stands (its SiemSinkState)."""
    return field(source=f"state.{name}", read_only=True, allow_null=True)


class SiemSinkSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """A SIEM sink: its settings (audit/siem/config.py says which keys each kind takes), a write-only
    webhook ``secret`` (``has_secret`` says whether one is set) and, read-only, where delivery stands."""

    tenant = ScopedRelatedField(queryset=Tenant.objects.all(), tenant_path="pk", required=False)
    settings = serializers.DictField(
        required=False, help_text='The kind\'s options, e.g. {"url": "https://siem.example/hook"}.'
    )
    secret = serializers.CharField(
        write_only=True,
        required=False,
        max_length=4000,
        trim_whitespace=False,
        help_text="Webhook only: the HMAC signing secret (16+ characters); never shown again. Left out "
        "or empty on an update: the current one is kept.",
    )
    has_secret = serializers.BooleanField(read_only=True)
    from_start = serializers.BooleanField(
        write_only=True,
        required=False,
        default=False,
        help_text="On create: send the tenant's kept events first (default: only those written from now).",
    )
    cursor = _delivery(serializers.IntegerField, "cursor")
    backlog = _delivery(serializers.IntegerField, "backlog")
    delivered = _delivery(serializers.IntegerField, "delivered")
    failures = _delivery(serializers.IntegerField, "failures")
    last_error = _delivery(serializers.CharField, "last_error")
    last_attempt_at = _delivery(serializers.DateTimeField, "last_attempt_at")
    last_success_at = _delivery(serializers.DateTimeField, "last_success_at")
    next_attempt_at = _delivery(serializers.DateTimeField, "next_attempt_at")

    class Meta:
        model = SiemSink
        fields = [
            "id", "tenant", "name", "kind", "enabled", "settings", "secret", "has_secret", "from_start",
            "created_at", "updated_at", "cursor", "backlog", "delivered", "failures", "last_error",
            "last_attempt_at", "last_success_at", "next_attempt_at",
        ]  # fmt: skip
        # The (tenant, name) uniqueness is the service's (model's) check: one statement, one error shape.
        validators: list[Any] = []

    def validate_kind(self, value: str) -> str:
        if self.instance is not None and value != self.instance.kind:
            raise serializers.ValidationError("A sink's kind cannot change: create another sink.")
        return value


class AuditSettingsSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """A tenant's audit settings, addressed by the tenant's id."""

    id = serializers.IntegerField(read_only=True, help_text="The tenant's id.")
    tenant = serializers.CharField(source="name", read_only=True, help_text="The tenant's name.")
    retention_days = serializers.IntegerField(
        allow_null=True,
        help_text="Delete the tenant's audit events older than this many days (1-100000; whole sealed "
        "ranges only); null: keep them forever.",
    )
