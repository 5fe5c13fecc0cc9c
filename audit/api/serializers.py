"""Serializers of the audit app's API: audit events, read-only."""

from __future__ import annotations

from rest_framework import serializers

from audit.models import AuditEvent


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
