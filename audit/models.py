"""The audit trail: one row per proxied request."""

from __future__ import annotations

import uuid

from django.db import models

from gateway.models import Credential, Target, Tenant


class AuditEvent(models.Model):
    """What one proxied request was, who made it, what the gateway decided and how it went; or, for
    the other kinds, a tool definition the gateway first saw, saw change or had approved, or an
    admin action (``details`` then says what, e.g. the definition hashes and the scan's findings).

    Foreign keys keep no database constraint, so deleting a tenant, target or credential never
    deletes or blocks its audit trail; the credential's name and prefix are kept as they were at
    call time. ``event_id`` is given by the gateway when the event is appended to the write-ahead
    file, so writing an event twice (after a crash) stores it once.
    """

    class Decision(models.TextChoices):
        ALLOWED = "allowed", "Allowed"
        DENIED = "denied", "Denied"
        ERROR = "error", "Error"

    class Kind(models.TextChoices):
        CALL = "call", "Proxied call"
        TOOL_NEW = "tool_new", "Tool definition first seen"
        TOOL_CHANGED = "tool_changed", "Tool definition changed"
        TOOL_APPROVED = "tool_approved", "Tool definition approved"
        ADMIN = "admin", "Admin action"

    event_id = models.UUIDField(
        default=uuid.uuid4,
        unique=True,
        editable=False,
        help_text="Given by the gateway; makes writes idempotent.",
    )
    created_at = models.DateTimeField(db_index=True)
    request_id = models.CharField(max_length=100, db_index=True)
    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    target = models.ForeignKey(
        Target, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    credential = models.ForeignKey(
        Credential, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    credential_name = models.CharField(
        max_length=200, blank=True, help_text="The credential's name at the time of the call."
    )
    credential_prefix = models.CharField(
        max_length=16, blank=True, help_text="The credential's token prefix at the time of the call."
    )
    target_slug = models.CharField(max_length=100, blank=True)
    http_method = models.CharField(max_length=10)
    path = models.CharField(max_length=2000)
    route = models.CharField(
        max_length=2000, blank=True, help_text="The route(s) scoped, e.g. POST /tools/search."
    )
    jsonrpc_method = models.CharField(max_length=200, blank=True)
    tool = models.CharField(max_length=500, blank=True)
    jsonrpc_id = models.CharField(max_length=200, blank=True)
    session_id = models.CharField(max_length=300, blank=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.CALL, db_index=True)
    decision = models.CharField(max_length=10, choices=Decision.choices)
    reason = models.CharField(max_length=500, blank=True)
    status_code = models.PositiveSmallIntegerField(help_text="Status the agent received.")
    upstream_status = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.FloatField()
    request_bytes = models.BigIntegerField(default=0)
    response_bytes = models.BigIntegerField(default=0)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    meter_notes = models.JSONField(
        default=list, blank=True, help_text="What the meters could not do, e.g. a meter not enforced."
    )
    response_values = models.JSONField(
        default=dict, blank=True, help_text="Values response_value meters read, summed by JSON path."
    )
    protections = models.JSONField(
        default=dict,
        blank=True,
        help_text="What response filters removed and redaction found, as counts per filter and per kind"
        " (never values).",
    )
    details = models.JSONField(
        default=dict, blank=True, help_text="For the events that are not calls: what was seen or done."
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "created_at"]),
            models.Index(fields=["credential", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.http_method} {self.path} {self.decision}"
