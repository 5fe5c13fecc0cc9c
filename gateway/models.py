"""The core domain: tenants, the MCP targets they proxy and the agents' credentials."""

from __future__ import annotations

import re
from typing import Any

from django.apps import apps
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from audit.changes import ChangeLogged

#: A bare host name (or IPv4 address) as ``trusted_url_hosts`` lists it: no scheme, port, path or user.
HOST_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
HOST_NAME = re.compile(rf"{HOST_LABEL}(?:\.{HOST_LABEL})*\.?")


class Tenant(ChangeLogged, models.Model):
    """An organisation; every other object belongs to exactly one tenant."""

    name = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    oauth_allow_dcr = models.BooleanField(
        "allow OAuth dynamic client registration",
        default=False,
        help_text="An OAuth client registered by RFC 7591 dynamic registration may be granted access to "
        "this tenant's targets (by an admin's consent).",
    )
    oauth_allow_cimd = models.BooleanField(
        "allow OAuth client ID metadata documents",
        default=False,
        help_text="An OAuth client identified by the HTTPS URL of its metadata document may be granted "
        "access to this tenant's targets (by an admin's consent).",
    )
    oauth_scopes = models.TextField(
        "OAuth scopes for registered clients",
        blank=True,
        help_text="The scopes a dynamically registered or metadata-document client may be granted, one per "
        "line: tools:NAME, prompts:NAME, resources:URI (a name may be a glob: tools:*), or mcp (every call).",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def oauth_scope_list(self) -> list[str]:
        return list(dict.fromkeys(_lines(self.oauth_scopes)))

    def clean(self) -> None:
        """Every listed OAuth scope is one the gateway can map to allow-rules."""
        from gateway.oauth.scopes import scope_problem

        problems = [problem for scope in self.oauth_scope_list() if (problem := scope_problem(scope))]
        if problems:
            raise ValidationError({"oauth_scopes": problems})

    def change_log_scope(self) -> tuple[int | None, int | None, int | None]:
        return self.pk, None, None


class Target(ChangeLogged, models.Model):
    """An upstream MCP server (or plain HTTP tool server) reached at ``/mcp/<slug>/``."""

    class Kind(models.TextChoices):
        MCP = "mcp", "MCP (JSON-RPC over Streamable HTTP)"
        HTTP = "http", "Plain HTTP tool server"

    class AuthType(models.TextChoices):
        NONE = "none", "None"
        BEARER = "bearer", "Bearer token"
        HEADER = "header", "Custom header"

    change_log_secrets = ("auth_secret_encrypted",)

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
    hold_new_tools = models.BooleanField(
        default=False,
        help_text="Hold a tool seen for the first time until an admin approves it. Off: a new tool is "
        "approved on first sight, unless the poisoning scan flags it (a flagged tool is always held).",
    )
    validate_arguments = models.BooleanField(
        default=True,
        help_text="Check tools/call arguments against the approved tool's input schema before forwarding.",
    )
    trusted_url_hosts = models.TextField(
        blank=True,
        help_text="Hosts (one per line; their subdomains too) whose URLs in a tool's description are not "
        "flagged by the poisoning scan. The upstream's own host is always trusted.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    def change_log_scope(self) -> tuple[int | None, int | None, int | None]:
        return self.tenant_id, self.pk, None

    @property
    def has_upstream_secret(self) -> bool:
        return bool(self.auth_secret_encrypted)

    def allowed_origin_list(self) -> list[str]:
        return [line.strip().rstrip("/") for line in self.allowed_origins.splitlines() if line.strip()]

    def clean(self) -> None:
        """Refuse an upstream the SSRF policy forbids (gateway/egress.py: its host resolved now) and
        trusted URL hosts that are not bare host names (a scheme, port or path never matches)."""
        from gateway.egress import EgressRefused, egress_policy

        errors: dict[str, str] = {}
        if self.upstream_url:
            try:
                egress_policy().check_url(self.upstream_url)
            except EgressRefused as error:
                errors["upstream_url"] = str(error)
        bad = [host for host in _lines(self.trusted_url_hosts) if not is_host_name(host)]
        if bad:
            errors["trusted_url_hosts"] = (
                f"Not a bare host name: {', '.join(map(repr, bad))}. Give names such as docs.example.com, "
                "one per line, without scheme, port or path."
            )
        if errors:
            raise ValidationError(errors)

    def trusted_url_host_list(self) -> list[str]:
        """The hosts whose URLs the poisoning scan accepts: the upstream's own and the listed ones."""
        from urllib.parse import urlsplit

        listed = [line.strip().lower().rstrip(".") for line in self.trusted_url_hosts.splitlines()]
        own = (urlsplit(self.upstream_url).hostname or "").lower()
        return [host for host in dict.fromkeys([own, *listed]) if host]


def is_host_name(host: str) -> bool:
    """Whether ``host`` is a bare DNS name or IPv4 address (letters, digits, hyphens and dots)."""
    return len(host) <= 253 and HOST_NAME.fullmatch(host.lower()) is not None


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def audited_credential_ids(credential_ids: Any, using: str = "default") -> set[int]:
    """The ids among ``credential_ids`` (ids or a query of ids) that audit events refer to.

    Change-log entries do not count: they record the credential's own history, its deletion included.
    """
    audit_event = apps.get_model("audit", "AuditEvent")
    return set(
        audit_event.objects.using(using)
        .filter(credential_id__in=credential_ids)
        .exclude(kind="change")
        .values_list("credential_id", flat=True)
        .distinct()
    )


def _refuse_audited(credentials: list[Credential], using: str) -> None:
    audited = audited_credential_ids([c.pk for c in credentials], using)
    if audited:
        protected = [c for c in credentials if c.pk in audited]
        names = ", ".join(sorted(str(c) for c in protected))
        raise models.ProtectedError(
            f"Credentials that audit events refer to cannot be deleted: {names}. Deactivate them instead.",
            set(protected),
        )


def protect_audited_credentials(
    collector: Any, field: models.Field[Any, Any], sub_objs: Any, using: str
) -> None:
    """``on_delete`` of a credential's tenant: cascade, unless an audit event refers to the credential.

    The audit trail keeps no database constraint on purpose; this keeps deleting a tenant from
    leaving its audit rows pointing at nothing. Deactivate such credentials instead.
    """
    _refuse_audited(list(sub_objs), using)
    models.CASCADE(collector, field, sub_objs, using)


class CredentialQuerySet(models.QuerySet["Credential"]):
    def active(self) -> CredentialQuerySet:
        now = timezone.now()
        return self.filter(revoked_at__isnull=True, deactivated_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )

    def not_deactivated(self) -> CredentialQuerySet:
        return self.filter(deactivated_at__isnull=True)

    def delete(self) -> tuple[int, dict[str, int]]:
        """Delete, unless an audit event refers to one of the credentials (ProtectedError)."""
        _refuse_audited(list(self), self.db)
        return super().delete()


MAX_JWT_LEEWAY_SECONDS = 300


class Credential(ChangeLogged, models.Model):
    """One agent's proxy credential: an API key (the default kind) or a JWT identity.

    An API key's token is shown once, at creation or rotation; only its SHA-256 digest is stored, with
    a short public prefix used to find the row. A JWT credential has no token of the gateway's: the
    agent presents JWTs signed by its identity provider, verified with exactly one key source (an
    HS256 shared secret stored encrypted, a PEM public key, or a JWKS URL), and found by issuer and
    subject; its prefix is a generated id kept for display and audit. A credential that audit events
    refer to is never deleted
    (nor cascaded away with its tenant): it is deactivated, which refuses it like a revoked one and
    hides it from the default lists.
    """

    class Kind(models.TextChoices):
        API_KEY = "api_key", "API key"
        JWT = "jwt", "JWT"

    change_log_secrets = ("jwt_hs256_secret_encrypted",)
    change_log_hashes = ("secret_hash",)

    tenant = models.ForeignKey(Tenant, on_delete=protect_audited_credentials, related_name="credentials")
    targets = models.ManyToManyField(Target, related_name="credentials", blank=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.API_KEY)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    deactivated_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="A deactivated credential is refused and hidden; it is kept for the audit trail.",
    )
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    # JWT credentials only (kind "jwt"); blank for API keys.
    jwt_issuer = models.CharField(
        "issuer", max_length=500, blank=True, help_text="The exact `iss` claim of accepted tokens."
    )
    jwt_audience = models.CharField(
        "audience", max_length=500, blank=True, help_text="A value the `aud` claim must hold."
    )
    jwt_subject_claim = models.CharField(
        "subject claim", max_length=100, default="sub", blank=True, help_text="The claim naming the agent."
    )
    jwt_subject = models.CharField(
        "subject", max_length=500, blank=True, help_text="The value the subject claim must have."
    )
    jwt_leeway_seconds = models.PositiveIntegerField(
        "leeway (seconds)",
        default=30,
        validators=[MaxValueValidator(MAX_JWT_LEEWAY_SECONDS)],
        help_text="Clock skew tolerated on exp, nbf and iat.",
    )
    jwt_hs256_secret_encrypted = models.TextField(blank=True, editable=False)
    jwt_public_key = models.TextField(
        "public key (PEM)", blank=True, help_text="An RSA (RS256) or EC P-256 (ES256) public key."
    )
    jwt_jwks_url = models.URLField("JWKS URL", max_length=2000, blank=True)

    objects = CredentialQuerySet.as_manager()

    class Meta:
        ordering = ["tenant", "name"]
        constraints = [
            # A deactivated credential gives its name back: a new one may take it.
            models.UniqueConstraint(
                fields=["tenant", "name"],
                condition=models.Q(deactivated_at__isnull=True),
                name="credential_unique_name",
                violation_error_message="A credential with this name already exists in this tenant.",
            ),
            # The issuer and subject find a JWT's credential: two live ones would make it ambiguous.
            models.UniqueConstraint(
                fields=["jwt_issuer", "jwt_subject_claim", "jwt_subject"],
                condition=models.Q(kind="jwt", deactivated_at__isnull=True),
                name="credential_unique_jwt_subject",
                violation_error_message="A JWT credential with this issuer and subject already exists.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"

    def change_log_scope(self) -> tuple[int | None, int | None, int | None]:
        return self.tenant_id, None, self.pk

    def delete(self, using: Any = None, keep_parents: bool = False) -> tuple[int, dict[str, int]]:
        """Delete, unless an audit event refers to this credential (ProtectedError): deactivate it."""
        _refuse_audited([self], using or self._state.db or "default")
        return super().delete(using=using, keep_parents=keep_parents)

    @property
    def is_jwt(self) -> bool:
        return self.kind == self.Kind.JWT

    @property
    def has_hs256_secret(self) -> bool:
        return bool(self.jwt_hs256_secret_encrypted)

    def clean(self) -> None:
        """The one statement of what a JWT credential needs (the API, the CLI and the admin all come here):
        issuer, audience and subject, and exactly one usable key source. An API key has none of them."""
        if not self.is_jwt:
            if self.jwt_issuer or self.jwt_hs256_secret_encrypted or self.jwt_public_key or self.jwt_jwks_url:
                raise ValidationError("Only a JWT credential has JWT settings.")
            return
        errors: dict[str, str] = {
            field: "Required for a JWT credential."
            for field in ("jwt_issuer", "jwt_audience", "jwt_subject", "jwt_subject_claim")
            if not getattr(self, field).strip()
        }
        key_problem = self._jwt_key_problem()
        if key_problem:
            errors[key_problem[0]] = key_problem[1]
        if errors:
            raise ValidationError(errors)

    def _jwt_key_problem(self) -> tuple[str, str] | None:
        from gateway.jwt_keys import UnusableKey, jwks_url_problem, load_public_key

        sources = [
            bool(self.jwt_hs256_secret_encrypted),
            bool(self.jwt_public_key.strip()),
            bool(self.jwt_jwks_url),
        ]
        if sum(sources) != 1:
            message = "Give exactly one key source: an HS256 shared secret, a PEM public key or a JWKS URL."
            return "__all__", message
        if self.jwt_public_key.strip():
            try:
                load_public_key(self.jwt_public_key)
            except UnusableKey as exc:
                return "jwt_public_key", f"Unusable public key: {exc}."
        if self.jwt_jwks_url:
            problem = jwks_url_problem(self.jwt_jwks_url)
            if problem:
                return "jwt_jwks_url", f"Refused: {problem}."
        return None

    @property
    def status(self) -> str:
        if self.deactivated_at is not None:
            return "deactivated"
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= timezone.now():
            return "expired"
        return "active"


class TenantMembership(ChangeLogged, models.Model):
    """A staff user's tenant and role (gateway/roles.py says what each role may do). A user without a
    membership reaches no tenant unless it is a superuser."""

    class Role(models.TextChoices):
        ADMIN = "admin", "Tenant admin"
        REVIEWER = "reviewer", "Reviewer (read-only audit, usage and exports)"

    user = models.OneToOneField(
        "auth.User", on_delete=models.CASCADE, related_name="tenant_membership", primary_key=True
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["tenant", "user"]

    def __str__(self) -> str:
        return f"{self.user} ({self.get_role_display()} of {self.tenant})"

    def change_log_scope(self) -> tuple[int | None, int | None, int | None]:
        return self.tenant_id, None, None


class ApiToken(ChangeLogged, models.Model):
    """A user's token for the REST API (``Authorization: Token <t>`` or ``Bearer <t>``): it acts as
    its user, with that user's role (gateway/roles.py), and a ``read`` token only reads.

    Like an agent's credential, the token is shown once; only its SHA-256 digest is stored, found by
    its short public prefix and compared in constant time. Only superusers manage tokens in the admin.
    """

    class Scope(models.TextChoices):
        READ = "read", "Read (safe methods only)"
        WRITE = "write", "Read and write"

    change_log_hashes = ("secret_hash",)

    user = models.ForeignKey("auth.User", on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=200, blank=True)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    scope = models.CharField(max_length=5, choices=Scope.choices, default=Scope.READ)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["user", "created_at"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name or 'token'} of {self.user} ({self.prefix})"

    def change_log_scope(self) -> tuple[int | None, int | None, int | None]:
        return None, None, None

    @property
    def is_usable(self) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()
