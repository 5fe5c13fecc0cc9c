"""Allow-rules that scope what a credential may call, and the policy version counter."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.db import models

from audit.changes import ChangeLogged
from gateway.models import Credential
from policies.tools.definitions import ToolDefinition, escape_invisible

#: An allow-rule's method: an HTTP method name, or ``*`` for any.
ALLOW_RULE_METHOD = re.compile(r"\*|[A-Z]+")


class AllowRule(ChangeLogged, models.Model):
    """Allows one route, ``METHOD /path-glob``, to a credential. Everything else is denied.

    JSON-RPC calls are matched as virtual routes: ``tools/call`` of ``search`` is ``POST /tools/search``.
    In the glob, ``*`` matches within one path segment and ``**`` matches across segments.
    """

    credential = models.ForeignKey(Credential, on_delete=models.CASCADE, related_name="rules")
    method = models.CharField(max_length=10, default="POST", help_text="HTTP method, or * for any.")
    path = models.CharField(max_length=1000, help_text="Path glob, e.g. /tools/search or /tools/*.")
    description = models.CharField(max_length=500, blank=True)
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["credential", "order", "id"]

    def __str__(self) -> str:
        return f"{self.method} {self.path}"

    def change_log_scope(self) -> tuple[int | None, int | None, int | None]:
        return self.credential.tenant_id, None, self.credential_id

    def clean(self) -> None:
        """The one statement of a rule's shape (the API, the CLI's services and the admin come here): the
        method upper-cased, an HTTP method name or ``*``; the path glob starting with ``/``."""
        self.method = (self.method or "").strip().upper()
        self.path = (self.path or "").strip()
        errors: dict[str, str] = {}
        if not ALLOW_RULE_METHOD.fullmatch(self.method):
            errors["method"] = "Enter an HTTP method such as POST, or * for any method."
        if not self.path.startswith("/"):
            errors["path"] = "A path glob starts with /, e.g. /tools/search or /tools/*."
        if errors:
            raise ValidationError(errors)


class PolicyVersion(models.Model):
    """A single-row counter bumped on every configuration change.

    Gateway processes without Redis poll it (at most once per ``POLICY_POLL_SECONDS``) to learn that
    their compiled policies are stale.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    version = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"policy version {self.version}"


class ProtectionScope(ChangeLogged, models.Model):
    """Where a filter or redaction policy applies: a tenant, narrowed to one target or one credential.

    With neither, it applies to every call of the tenant; ``route`` (``METHOD /glob``, the allow-rule
    syntax) narrows it further to the calls whose virtual route matches.
    """

    class Mode(models.TextChoices):
        ENFORCE = "enforce"
        MONITOR = "monitor"

    tenant = models.ForeignKey("gateway.Tenant", on_delete=models.CASCADE, related_name="+")
    target = models.ForeignKey(
        "gateway.Target", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    credential = models.ForeignKey(
        Credential, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    route = models.CharField(
        max_length=1000, blank=True, help_text="Optional 'METHOD /glob', e.g. 'POST /tools/*'; empty: all."
    )
    mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.ENFORCE)
    order = models.PositiveIntegerField(default=0)

    class Meta:
        abstract = True

    def clean_scope(self) -> None:
        """Raise ValidationError unless the scope is one tenant, with at most one target or credential."""
        from policies.protection import scope_errors

        errors = scope_errors(
            tenant_id=self.tenant_id,
            target_tenant_id=self.target.tenant_id if self.target_id and self.target else None,
            credential_tenant_id=(
                self.credential.tenant_id if self.credential_id and self.credential else None
            ),
            has_target=self.target_id is not None,
            has_credential=self.credential_id is not None,
            route=self.route,
        )
        if errors:
            raise ValidationError(errors)

    @property
    def scope_label(self) -> str:
        if self.credential_id is not None:
            return f"credential {self.credential_id}"
        if self.target_id is not None:
            return f"target {self.target_id}"
        return f"tenant {self.tenant_id}"


class Filter(ProtectionScope):
    """Deletes every match of its JSON paths from the results it applies to (or, monitoring, counts them).

    Filters stack: the tenant's first, then the target's, then the credential's, each in ``order``.
    """

    paths = models.JSONField(default=list, help_text='JSON paths, e.g. ["$..id", "$.owner"].')

    class Meta:
        ordering = ["tenant", "order", "id"]

    def __str__(self) -> str:
        return f"filter {self.pk} ({self.scope_label}): {', '.join(map(str, self.paths or []))}"

    def clean(self) -> None:
        from policies.protection import path_errors

        self.clean_scope()
        errors = path_errors(self.paths)
        if errors:
            raise ValidationError({"paths": errors})


class RedactionPolicy(ProtectionScope):
    """Finds PII and secrets with the named detectors and masks, pseudonymises or drops them."""

    class Action(models.TextChoices):
        MASK = "mask"
        PSEUDONYM = "pseudonym"
        DROP = "drop"

    detectors = models.JSONField(default=list, help_text='Detector names, e.g. ["email", "card"] or ["all"].')
    action = models.CharField(max_length=10, choices=Action.choices, default=Action.MASK)

    class Meta:
        ordering = ["tenant", "order", "id"]
        verbose_name_plural = "redaction policies"

    def __str__(self) -> str:
        names = ", ".join(map(str, self.detectors or []))
        return f"redaction {self.pk} ({self.scope_label}): {self.action} {names}"

    def clean(self) -> None:
        from policies.protection import detector_errors

        self.clean_scope()
        errors = detector_errors(self.detectors)
        if errors:
            raise ValidationError({"detectors": errors})


class PinnedTool(models.Model):
    """A target's tool as the gateway pinned it: the approved definition, the one last served, and the
    state that decides whether agents may see and call it.

    Definitions are stored as their canonical bytes (policies/tools/definitions.py), so the stored hash
    can be recomputed and a hostile definition (NUL characters, any Unicode) is kept exactly.
    """

    class State(models.TextChoices):
        APPROVED = "approved", "Approved"
        PENDING = "pending", "New, held for approval"
        CHANGED = "changed", "Changed, held for approval"

    target = models.ForeignKey("gateway.Target", on_delete=models.CASCADE, related_name="pinned_tools")
    name = models.CharField(max_length=200)
    state = models.CharField(max_length=10, choices=State.choices)
    approved_definition = models.BinaryField(null=True, blank=True, editable=False)
    approved_hash = models.CharField(max_length=64, blank=True, editable=False)
    served_definition = models.BinaryField(editable=False)
    served_hash = models.CharField(max_length=64, editable=False)
    findings = models.JSONField(
        default=list, blank=True, help_text="Why the served definition was flagged (poisoning scan, schema)."
    )
    first_seen_at = models.DateTimeField()
    changed_at = models.DateTimeField(help_text="When the served definition was last new or different.")
    approved_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["target", "name"]
        constraints = [models.UniqueConstraint(fields=["target", "name"], name="pinned_tool_unique_name")]

    def __str__(self) -> str:
        # A hostile name may hold invisible characters: every page and log entry shows them escaped.
        return f"{self.target} / {escape_invisible(self.name)} ({self.state})"

    def served_tool(self) -> ToolDefinition:
        """The definition last served, rebuilt from its stored bytes; raises ToolDefinitionError."""
        return ToolDefinition.from_canonical(bytes(self.served_definition))

    def approved_tool(self) -> ToolDefinition | None:
        """The approved definition (None before any approval); raises ToolDefinitionError."""
        if self.approved_definition is None:
            return None
        return ToolDefinition.from_canonical(bytes(self.approved_definition))
