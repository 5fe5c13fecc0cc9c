"""Meters (limits on calls and on values read from responses) and the usage rollups."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models

from audit.changes import ChangeLogged
from gateway.models import Credential, Target, Tenant


class Meter(ChangeLogged, models.Model):
    """A limit on what the calls of a credential, a target or a whole tenant may use per window.

    The scope is the credential when one is set (optionally only on one target), else the target
    when one is set, else the tenant. Every meter that applies to a call is enforced; the first
    exhausted one refuses it. ``request_count`` counts calls before they are forwarded;
    ``response_value`` sums numbers read from the responses with JSON paths and refuses once the
    window's sum has reached the limit. See docs/METERING.md for the window semantics.
    """

    class Kind(models.TextChoices):
        REQUEST_COUNT = "request_count", "Request count"
        RESPONSE_VALUE = "response_value", "Response value (sum of JSON paths)"

    class Window(models.TextChoices):
        MINUTE = "minute", "Minute (sliding)"
        HOUR = "hour", "Hour (sliding)"
        DAY = "day", "Day (UTC calendar day)"
        MONTH = "month", "Month (UTC calendar month)"

    class FailMode(models.TextChoices):
        OPEN = "open", "Open: let calls through, audited as not enforced"
        CLOSED = "closed", "Closed: refuse calls with 503"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="meters")
    target = models.ForeignKey(Target, null=True, blank=True, on_delete=models.CASCADE, related_name="meters")
    credential = models.ForeignKey(
        Credential, null=True, blank=True, on_delete=models.CASCADE, related_name="meters"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.REQUEST_COUNT)
    window = models.CharField(max_length=10, choices=Window.choices, default=Window.MINUTE)
    limit = models.FloatField(validators=[MinValueValidator(0)])
    route = models.CharField(
        max_length=1000,
        blank=True,
        help_text="Count only matching calls, e.g. 'POST /tools/*' or 'POST /tools/search'. "
        "Blank: every call that is not protocol plumbing.",
    )
    value_paths = models.JSONField(
        default=list,
        blank=True,
        help_text="For response values: JSON paths into the JSON-RPC response, summed per call, "
        "e.g. $.result.structuredContent.usage.total_tokens",
    )
    fail_mode = models.CharField(max_length=10, choices=FailMode.choices, default=FailMode.OPEN)
    description = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant", "id"]
        indexes = [models.Index(fields=["tenant", "target", "credential"])]

    def __str__(self) -> str:
        return f"m{self.pk}: {self.kind} {self.limit:g} per {self.window} ({self.scope})"

    @property
    def scope(self) -> str:
        if self.credential_id is not None:
            return "credential"
        if self.target_id is not None:
            return "target"
        return "tenant"

    @property
    def name(self) -> str:
        """The name agents see in the RateLimit fields and in refusals."""
        return f"m{self.pk}"

    def clean(self) -> None:
        errors = {**self._scope_errors(), **self._config_errors()}
        if errors:
            raise ValidationError(errors)

    def _scope_errors(self) -> dict[str, str]:
        errors: dict[str, str] = {}
        target = self.target if self.target_id is not None else None
        credential = self.credential if self.credential_id is not None else None
        if target is not None and self.tenant_id is not None and target.tenant_id != self.tenant_id:
            errors["target"] = "The target belongs to another tenant."
        if credential is not None and self.tenant_id is not None and credential.tenant_id != self.tenant_id:
            errors["credential"] = "The credential belongs to another tenant."
        return errors

    def _config_errors(self) -> dict[str, str]:
        from metering.compiler import MeterConfigError, parse_route, parse_value_paths

        errors: dict[str, str] = {}
        if self.kind == self.Kind.REQUEST_COUNT and self.limit is not None and self.limit != int(self.limit):
            errors["limit"] = "A request count limit must be a whole number."
        try:
            parse_route(self.route)
        except MeterConfigError as exc:
            errors["route"] = str(exc)
        try:
            parse_value_paths(self.kind, self.value_paths)
        except MeterConfigError as exc:
            errors["value_paths"] = str(exc)
        return errors


class UsageRollup(models.Model):
    """Usage of one tool by one credential on one target over one hour or one UTC day.

    Recomputed whole from the audit events of its period by ``metering.services.usage_rollup_run``,
    so running the rollup twice, or again after a crash, gives the same rows.
    """

    class Period(models.TextChoices):
        HOUR = "hour", "Hour"
        DAY = "day", "Day"

    period = models.CharField(max_length=4, choices=Period.choices)
    period_start = models.DateTimeField()
    tenant = models.ForeignKey(Tenant, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    target = models.ForeignKey(
        Target, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    credential = models.ForeignKey(
        Credential, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    tool = models.CharField(max_length=500, blank=True)
    calls = models.PositiveIntegerField(default=0, help_text="Audited requests.")
    denials = models.PositiveIntegerField(default=0, help_text="Requests refused by policy or by a meter.")
    rate_limited = models.PositiveIntegerField(default=0, help_text="Requests refused by a meter (429).")
    errors = models.PositiveIntegerField(default=0, help_text="Requests that ended in an error.")
    response_values = models.JSONField(default=dict, blank=True, help_text="Summed values by JSON path.")
    latency_p50_ms = models.FloatField(default=0)
    latency_p95_ms = models.FloatField(default=0)

    class Meta:
        ordering = ["-period_start", "tenant", "target", "credential", "tool"]
        indexes = [
            models.Index(fields=["period", "period_start"]),
            models.Index(fields=["tenant", "period", "period_start"]),
        ]

    def __str__(self) -> str:
        return f"{self.period} {self.period_start:%Y-%m-%d %H:00} {self.tool or '-'}: {self.calls} call(s)"


class RollupCursor(models.Model):
    """A single row: the highest audit event id the usage rollup has already taken into account."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    last_event_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"rolled up to audit event {self.last_event_id}"
