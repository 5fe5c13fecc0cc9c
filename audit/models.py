"""The audit trail: one row per proxied request (or tool / admin event), the seals that make it
tamper-evident, and the record of each verification of those seals; the SIEM sinks events are
streamed to (and where delivery to each stands), and each tenant's retention setting."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from audit.changes import ChangeLogged
from gateway.models import Credential, Target, Tenant


class AuditEvent(models.Model):
    """What one proxied request was, who made it, what the gateway decided and how it went; or, for
    the other kinds, a tool definition the gateway first saw, saw change or had approved, or an
    admin action, or a configuration change (``details`` then says what, e.g. the definition hashes and
    the scan's findings, or who changed which object and the diff: audit/changes.py).

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
        CHANGE = "change", "Configuration change"

    event_id = models.UUIDField(
        default=uuid.uuid4,
        unique=True,
        editable=False,
        help_text="Given by the gateway; makes writes idempotent.",
    )
    created_at = models.DateTimeField(db_index=True)
    request_id = models.CharField(max_length=100, db_index=True)
    tenant = models.ForeignKey(
        Tenant,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,  # led by the composite indexes in Meta
        related_name="+",
    )
    target = models.ForeignKey(
        Target,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,  # led by the composite indexes in Meta
        related_name="+",
    )
    credential = models.ForeignKey(
        Credential,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,  # led by the composite indexes in Meta
        related_name="+",
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
    # Set once, by the sealer (audit/services.py); not part of the event's canonical form.
    seal = models.ForeignKey(
        "AuditSeal", null=True, blank=True, editable=False, on_delete=models.PROTECT, related_name="events"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        # The audit list's filters (audit/selectors.py audit_events_filtered), each read newest first;
        # bench/audit_query_bench.py shows which plan uses which. An exact-match column leads, the
        # tenant follows: one index serves a tenant's reviewer and a query across tenants.
        indexes = [
            # With the decision in it, "a tenant's allowed calls" is counted from the index alone.
            models.Index(
                fields=["tenant", "created_at", "id"], include=["decision"], name="audit_event_tenant_time"
            ),
            models.Index(fields=["credential", "created_at"]),
            models.Index(fields=["target", "created_at"], name="audit_event_target_time"),
            models.Index(
                fields=["credential_name", "tenant", "created_at"], name="audit_event_credname_time"
            ),
            models.Index(fields=["tool", "tenant", "created_at"], name="audit_event_tool_time"),
            # Denials and errors only (about one in ten): "allowed" is most events, read by the index above.
            models.Index(
                fields=["decision", "tenant", "created_at"],
                condition=~Q(decision="allowed"),
                name="audit_event_decision_time",
            ),
            # The events with a reason (denials and errors, about one in ten), the reason in the index: a
            # reason search reads these entries, not the table (PostgreSQL; elsewhere without INCLUDE).
            models.Index(
                fields=["tenant", "created_at"],
                include=["id", "reason"],
                condition=~Q(reason=""),
                name="audit_event_reason_tenant",
            ),
            models.Index(
                fields=["created_at"],
                include=["id", "tenant", "reason"],
                condition=~Q(reason=""),
                name="audit_event_reason_time",
            ),
            # The sealer's work list: small, as sealed events leave it.
            models.Index(
                fields=["tenant", "id"], condition=Q(seal__isnull=True), name="audit_event_unsealed"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.http_method} {self.path} {self.decision}"


class AuditSeal(models.Model):
    """A signed Merkle root over a batch of one chain's events (see audit/canonical.py).

    A chain is a tenant's events (``tenant`` null: the events without a tenant). Seals of a chain are
    numbered 1, 2, ... and each names the hash of the one before, so a seal removed or replaced breaks
    the link. ``manifest`` lists the sealed events as (id, leaf hash) pairs in id order, so a
    verification names the event that was edited, deleted, inserted or moved; its SHA-256 is signed.
    Events of one seal are the ones unsealed when it was made, so a late-committed event may have a
    lower id than events of an earlier seal: ``first_event_id``/``last_event_id`` bound the ids, they
    do not say every id between belongs to the seal.
    """

    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    sequence = models.PositiveBigIntegerField(help_text="1 for a chain's first seal, then 2, 3, ...")
    created_at = models.DateTimeField()
    first_event_id = models.BigIntegerField()
    last_event_id = models.BigIntegerField()
    event_count = models.PositiveIntegerField()
    root = models.CharField(max_length=64, help_text="SHA-256 Merkle root (RFC 6962) of the events, hex.")
    manifest = models.BinaryField(help_text="(event id, leaf hash) pairs, 40 bytes each, in id order.")
    manifest_sha256 = models.CharField(max_length=64)
    previous_hash = models.CharField(max_length=64, help_text="seal_hash of the chain's previous seal.")
    seal_hash = models.CharField(max_length=64, help_text="SHA-256 of this seal's canonical bytes, hex.")
    key_id = models.CharField(max_length=16, help_text="Which signing key signed (audit-keys).")
    signature = models.CharField(max_length=128, help_text="Ed25519 signature of the canonical bytes, hex.")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "sequence"],
                condition=Q(tenant__isnull=False),
                name="audit_seal_tenant_sequence",
            ),
            models.UniqueConstraint(
                fields=["sequence"], condition=Q(tenant__isnull=True), name="audit_seal_untenanted_sequence"
            ),
        ]

    def __str__(self) -> str:
        return f"seal #{self.sequence} of tenant {self.tenant_id or '-'} ({self.event_count} events)"


class AuditVerification(models.Model):
    """One run of ``verify_audit`` over one chain: when, what it checked and what it found."""

    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    verified_at = models.DateTimeField(db_index=True)
    ok = models.BooleanField()
    seals_checked = models.PositiveIntegerField(default=0)
    events_checked = models.PositiveBigIntegerField(default=0)
    first_problem = models.TextField(blank=True)
    problems = models.JSONField(default=list, blank=True, help_text="What failed (at most 100 entries).")

    class Meta:
        ordering = ["-verified_at", "-id"]

    def __str__(self) -> str:
        return f"{self.verified_at:%Y-%m-%d %H:%M:%S} {'ok' if self.ok else 'FAILED'}"


def in_chain(tenant_id: int | None) -> Q:
    """The events (or seals) of the chain of ``tenant_id``; None is the chain of events without tenant."""
    return Q(tenant__isnull=True) if tenant_id is None else Q(tenant_id=tenant_id)


class SiemSink(ChangeLogged, models.Model):
    """Where a tenant's audit events are streamed as they are written: a syslog collector (RFC 5424 over
    TCP or TLS), an HTTPS webhook (batched JSON signed with HMAC-SHA256) or a JSON Lines file for a log
    shipper (audit/siem/). ``settings`` holds the kind's options, validated by audit/siem/config.py;
    the webhook's signing secret is stored encrypted and never shown again. Where delivery stands lives
    in :class:`SiemSinkState`, so an edit of the sink never moves its cursor."""

    class Kind(models.TextChoices):
        SYSLOG = "syslog", "Syslog (RFC 5424 over TCP or TLS)"
        WEBHOOK = "webhook", "HTTPS webhook (batched JSON, HMAC-signed)"
        FILE = "file", "JSON Lines file"

    change_log_secrets = ("secret_encrypted",)

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="siem_sinks")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    settings = models.JSONField(default=dict, blank=True, help_text="The kind's options (see README).")
    secret_encrypted = models.TextField(blank=True, editable=False)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant__name", "name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="audit_siem_sink_tenant_name")]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"

    @property
    def has_secret(self) -> bool:
        return bool(self.secret_encrypted)


class SiemSinkState(models.Model):
    """Where delivery to one sink stands: everything up to ``cursor`` (an event id) was delivered or
    is a gap in the ids; ``holes`` are gaps seen recently that a late-committing writer may still fill
    (audit/siem/cursor.py). Written only by the delivery run, with ``QuerySet.update`` under a lease,
    so it is bookkeeping, not a change-log entry."""

    sink = models.OneToOneField(SiemSink, on_delete=models.CASCADE, primary_key=True, related_name="state")
    cursor = models.BigIntegerField(default=0, help_text="Id of the last event delivered (or passed).")
    holes = models.JSONField(default=list, blank=True)
    backlog = models.PositiveIntegerField(default=0, help_text="Events waiting (counted up to 10,000).")
    delivered = models.PositiveBigIntegerField(default=0)
    failures = models.PositiveIntegerField(default=0, help_text="Failed attempts since the last success.")
    last_error = models.TextField(blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_token = models.CharField(max_length=32, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"state of {self.sink_id}: cursor {self.cursor}"


class AuditSettings(ChangeLogged, models.Model):
    """A tenant's audit settings: how many days its events are kept (empty: forever). Retention
    (audit/retention.py) deletes older events only in whole sealed ranges and keeps the seals."""

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="audit_settings")
    retention_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(100_000)],
        help_text="Delete audit events older than this many days (whole sealed ranges only). Empty: keep.",
    )

    class Meta:
        verbose_name_plural = "audit settings"

    def __str__(self) -> str:
        days = f"{self.retention_days} days" if self.retention_days else "forever"
        return f"audit settings of tenant {self.tenant_id}: keep {days}"


class AuditExport(models.Model):
    """One export of a tenant's audit events for a period, requested from the admin and written in the
    background (audit/exports/): its progress while it runs, then its file under GATEWAY_EXPORT_DIR
    (with the signed manifest beside it, ``<file>.manifest.json``) or the reason it failed."""

    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        JSONL = "jsonl", "JSON Lines"
        PDF = "pdf", "PDF summary"

    class State(models.TextChoices):
        PENDING = "pending", "Waiting"
        RUNNING = "running", "Running"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    tenant = models.ForeignKey(
        Tenant, null=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    requested_by = models.CharField(max_length=150, help_text="The user who asked for the export.")
    requested_at = models.DateTimeField(db_index=True)
    since = models.DateTimeField(help_text="First moment of the period (included).")
    until = models.DateTimeField(help_text="End of the period (excluded).")
    format = models.CharField(max_length=10, choices=Format.choices)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent done.")
    events = models.PositiveBigIntegerField(default=0, help_text="Events written so far.")
    file_name = models.CharField(max_length=300, blank=True, help_text="Under GATEWAY_EXPORT_DIR.")
    size_bytes = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    updated_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the runner last saved progress (a stalled export stops moving).",
    )
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_format_display()} export #{self.pk} ({self.get_state_display()})"

    def is_stalled(self, now: datetime) -> bool:
        """Running, but no progress saved for :data:`EXPORT_STALLED_AFTER`: its process likely stopped
        (a restart ends the in-process runner; a Celery worker lost mid-task does not retry)."""
        moved = self.updated_at or self.requested_at
        return self.state == self.State.RUNNING and now - moved > EXPORT_STALLED_AFTER


#: Progress is saved at least every second while events are written; a PDF's summary queries or the
#: first count may run minutes on a large period, hence the margin.
EXPORT_STALLED_AFTER = timedelta(minutes=15)
