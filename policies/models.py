"""Allow-rules that scope what a credential may call, and the policy version counter."""

from __future__ import annotations

from django.db import models

from gateway.models import Credential


class AllowRule(models.Model):
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
