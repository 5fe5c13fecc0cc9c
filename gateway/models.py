"""The core domain: tenants, the MCP targets they proxy and the agents' credentials."""

from __future__ import annotations

from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone


class Tenant(models.Model):
    """An organisation; every other object belongs to exactly one tenant."""

    name = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Target(models.Model):
    """An upstream MCP server (or plain HTTP tool server) reached at ``/mcp/<slug>/``."""

    class Kind(models.TextChoices):
        MCP = "mcp", "MCP (JSON-RPC over Streamable HTTP)"
        HTTP = "http", "Plain HTTP tool server"

    class AuthType(models.TextChoices):
        NONE = "none", "None"
        BEARER = "bearer", "Bearer token"
        HEADER = "header", "Custom header"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="targets")
    slug = models.SlugField(max_length=100, unique=True, help_text="The proxy URL is /mcp/<slug>/.")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.MCP)
    upstream_url = models.URLField(max_length=2000)
    auth_type = models.CharField(max_length=10, choices=AuthType.choices, default=AuthType.NONE)
    auth_header_name = models.CharField(
        max_length=100,
        blank=True,
        help_text="Header that carries the secret when auth type is custom header.",
    )
    auth_secret_encrypted = models.TextField(blank=True, editable=False)
    timeout_seconds = models.FloatField(default=30.0, validators=[MinValueValidator(0.1)])
    allowed_origins = models.TextField(
        blank=True,
        help_text="Browser origins allowed to call this target, one per line (e.g. https://app.example.com). "
        "A request carrying any other Origin is refused.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    @property
    def has_upstream_secret(self) -> bool:
        return bool(self.auth_secret_encrypted)

    def allowed_origin_list(self) -> list[str]:
        return [line.strip().rstrip("/") for line in self.allowed_origins.splitlines() if line.strip()]


class CredentialQuerySet(models.QuerySet["Credential"]):
    def active(self) -> CredentialQuerySet:
        now = timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )


class Credential(models.Model):
    """One agent's proxy credential.

    The token is shown once, at creation or rotation; only its SHA-256 digest is stored, with a short
    public prefix used to find the row.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="credentials")
    targets = models.ManyToManyField(Target, related_name="credentials", blank=True)
    name = models.CharField(max_length=200)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = CredentialQuerySet.as_manager()

    class Meta:
        ordering = ["tenant", "name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="credential_unique_name")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"

    @property
    def status(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= timezone.now():
            return "expired"
        return "active"
