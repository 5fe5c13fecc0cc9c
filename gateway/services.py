"""Writes of the core domain: tenants, targets, credentials (HackSoft-style services)."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import ProtectedError
from django.utils import timezone

from gateway.crypto import encrypt_secret, rotate_secret
from gateway.jwt_keys import MIN_HS256_SECRET_BYTES
from gateway.models import ApiToken, Credential, Target, Tenant, TenantMembership, audited_credential_ids
from gateway.tokens import API_TOKEN_SCHEME, generate_token
from gateway.updates import model_update
from policies.models import AllowRule


class Keep(Enum):
    """The default of an update's optional argument that may also be set to None: leave it as it is."""

    KEEP = "keep"


KEEP = Keep.KEEP


def tenant_create(
    *,
    name: str,
    oauth_allow_dcr: bool = False,
    oauth_allow_cimd: bool = False,
    oauth_scopes: Iterable[str] = (),
) -> Tenant:
    """Create a tenant; the ``oauth_*`` settings say which registered OAuth clients it accepts and the
    scopes they may be granted (see :func:`tenant_set_oauth`)."""
    tenant = Tenant(name=name)
    _set_oauth(tenant, allow_dcr=oauth_allow_dcr, allow_cimd=oauth_allow_cimd, scopes=oauth_scopes)
    tenant.full_clean()
    tenant.save()
    return tenant


@transaction.atomic
def tenant_delete(*, tenant: Tenant) -> None:
    """Delete a tenant with everything it owns (targets, credentials, rules, meters, protections).

    Raises ProtectedError, deleting nothing, when audit events refer to one of its credentials: the
    audit trail must keep pointing at them. Each deleted row, cascaded ones included, is recorded in
    the change log.
    """
    audited = audited_credential_ids(tenant.credentials.values_list("pk", flat=True))
    if audited:
        kept = list(tenant.credentials.filter(pk__in=audited))
        names = ", ".join(sorted(str(c) for c in kept))
        raise ProtectedError(
            f"Tenant {tenant.name!r} cannot be deleted: audit events refer to its credentials {names}, "
            "and the audit trail must keep pointing at them.",
            set(kept),
        )
    tenant.delete()


@dataclass(frozen=True)
class CreatedUser:
    """A new staff user; ``password`` is the generated one (shown once), empty when one was given."""

    user: User
    membership: TenantMembership
    password: str


@transaction.atomic
def user_create(*, username: str, tenant: Tenant, role: str, password: str = "") -> CreatedUser:
    """Create a staff user who is ``role`` (admin or reviewer, gateway/roles.py) of ``tenant``. With no
    password given, one is generated and returned once; a given one must pass the password validators."""
    if role not in TenantMembership.Role.values:
        raise ValidationError(
            {"role": f"Unknown role {role!r}: choose one of {', '.join(TenantMembership.Role.values)}."}
        )
    if User.objects.filter(username=username).exists():
        raise ValidationError({"username": f"A user named {username!r} already exists."})
    generated = "" if password else secrets.token_urlsafe(18)
    user = User(username=username, is_staff=True)
    user.full_clean(exclude=["password"])
    validate_password(password or generated, user)
    user.set_password(password or generated)
    user.save()
    membership = TenantMembership(user=user, tenant=tenant, role=role)
    membership.full_clean(validate_unique=False)
    membership.save()
    return CreatedUser(user=user, membership=membership, password=generated)


def tenant_set_oauth(
    *,
    tenant: Tenant,
    allow_dcr: bool | None = None,
    allow_cimd: bool | None = None,
    scopes: Iterable[str] | None = None,
) -> Tenant:
    """Change which OAuth clients registered by dynamic registration (``allow_dcr``) or by a client ID
    metadata document (``allow_cimd``) an admin may grant access to this tenant's targets, and the
    ``scopes`` (``tools:search``, ``tools:*``, ``mcp`` ...) they may be granted; None keeps a setting.
    Raises ValidationError naming a scope the gateway cannot map to allow-rules."""
    _set_oauth(tenant, allow_dcr=allow_dcr, allow_cimd=allow_cimd, scopes=scopes)
    tenant.full_clean()
    tenant.save()
    return tenant


def _set_oauth(
    tenant: Tenant, *, allow_dcr: bool | None, allow_cimd: bool | None, scopes: Iterable[str] | None
) -> None:
    if allow_dcr is not None:
        tenant.oauth_allow_dcr = allow_dcr
    if allow_cimd is not None:
        tenant.oauth_allow_cimd = allow_cimd
    if scopes is not None:
        tenant.oauth_scopes = "\n".join(scope.strip() for scope in scopes if scope.strip())


def target_create(
    *,
    tenant: Tenant,
    slug: str,
    upstream_url: str,
    kind: str = Target.Kind.MCP,
    auth_type: str = Target.AuthType.NONE,
    auth_header_name: str = "",
    auth_secret: str = "",
    timeout_seconds: float = 30.0,
    allowed_origins: Iterable[str] = (),
    hold_new_tools: bool = False,
    validate_arguments: bool = True,
    trusted_url_hosts: Iterable[str] = (),
) -> Target:
    """Create a target; its upstream secret is encrypted before it is stored.

    ``hold_new_tools`` holds a tool seen for the first time until an admin approves it,
    ``validate_arguments`` checks ``tools/call`` arguments against the approved input schema, and
    ``trusted_url_hosts`` (bare host names) are hosts whose URLs the poisoning scan does not flag.
    Raises ValidationError naming a host that is not a bare host name.
    """
    target = Target(
        tenant=tenant,
        slug=slug,
        upstream_url=upstream_url,
        kind=kind,
        timeout_seconds=timeout_seconds,
        allowed_origins="\n".join(allowed_origins),
        hold_new_tools=hold_new_tools,
        validate_arguments=validate_arguments,
        trusted_url_hosts="\n".join(host.strip().lower() for host in trusted_url_hosts if host.strip()),
    )
    _set_upstream_auth(target, auth_type=auth_type, header_name=auth_header_name, secret=auth_secret)
    target.full_clean()
    target.save()
    return target


def target_set_upstream_auth(
    *, target: Target, auth_type: str, header_name: str = "", secret: str = ""
) -> Target:
    """Replace a target's upstream credential."""
    _set_upstream_auth(target, auth_type=auth_type, header_name=header_name, secret=secret)
    target.full_clean()
    target.save()
    return target


def _set_upstream_auth(target: Target, *, auth_type: str, header_name: str, secret: str) -> None:
    if auth_type == Target.AuthType.NONE:
        target.auth_type, target.auth_header_name, target.auth_secret_encrypted = auth_type, "", ""
        return
    if not secret:
        raise ValidationError({"auth_secret": "An upstream secret is required for this auth type."})
    if auth_type == Target.AuthType.HEADER and not header_name.strip():
        raise ValidationError({"auth_header_name": "A header name is required for custom header auth."})
    if auth_type == Target.AuthType.HEADER and header_name.strip().lower() in {"host", "content-length"}:
        raise ValidationError({"auth_header_name": f"{header_name!r} cannot carry an upstream secret."})
    target.auth_type = auth_type
    target.auth_header_name = header_name.strip() if auth_type == Target.AuthType.HEADER else ""
    target.auth_secret_encrypted = encrypt_secret(secret)


@dataclass(frozen=True)
class IssuedCredential:
    """A credential and its token; the token exists only here, once."""

    credential: Credential
    token: str


@transaction.atomic
def credential_create(
    *,
    tenant: Tenant,
    name: str,
    targets: Iterable[Target] = (),
    allow: Iterable[tuple[str, str]] = (),
    expires_at: datetime | None = None,
) -> IssuedCredential:
    """Create a credential bound to ``targets`` with allow-rules ``(method, path)``; return its token."""
    new = generate_token()
    credential = Credential(
        tenant=tenant, name=name, prefix=new.prefix, secret_hash=new.secret_hash, expires_at=expires_at
    )
    _credential_save(credential, targets=targets, allow=allow)
    return IssuedCredential(credential=credential, token=new.token)


def _credential_save(
    credential: Credential, *, targets: Iterable[Target], allow: Iterable[tuple[str, str]]
) -> None:
    """Validate and save a new credential, bind it to ``targets`` (of its own tenant only) and give
    it the allow-rules ``(method, path)`` in order."""
    targets = list(targets)
    _refuse_foreign_targets(credential.tenant, targets)
    credential.full_clean()
    credential.save()
    credential.targets.set(targets)
    for order, (method, path) in enumerate(allow):
        allow_rule_create(credential=credential, method=method, path=path, order=order)


@dataclass(frozen=True)
class JwtSettings:
    """What a JWT credential checks: issuer, audience, the subject claim's value, leeway, and one key
    source (``hs256_secret``, ``public_key`` PEM or ``jwks_url``). The secret is never shown again."""

    issuer: str
    audience: str
    subject: str
    subject_claim: str = "sub"
    leeway_seconds: int = 30
    hs256_secret: str = ""
    public_key: str = ""
    jwks_url: str = ""

    def __repr__(self) -> str:
        return f"JwtSettings(issuer={self.issuer!r}, audience={self.audience!r}, subject={self.subject!r})"


@transaction.atomic
def jwt_credential_create(
    *,
    tenant: Tenant,
    name: str,
    jwt: JwtSettings,
    targets: Iterable[Target] = (),
    allow: Iterable[tuple[str, str]] = (),
    expires_at: datetime | None = None,
) -> Credential:
    """Create a JWT credential bound to ``targets`` with allow-rules ``(method, path)``.

    It has no token to show: the agent presents JWTs its identity provider signs. Its prefix is a
    generated id, unique like an API key's, kept for display and audit. Raises ValidationError for a
    missing setting, no or several key sources, an unusable key or a refused JWKS URL.
    """
    credential = Credential(
        tenant=tenant,
        name=name,
        kind=Credential.Kind.JWT,
        prefix=generate_token().prefix,
        secret_hash="",
        expires_at=expires_at,
    )
    jwt_settings_apply(credential=credential, jwt=jwt)
    _credential_save(credential, targets=targets, allow=allow)
    return credential


def credential_set_jwt(*, credential: Credential, jwt: JwtSettings) -> Credential:
    """Change a JWT credential's settings. A blank ``hs256_secret`` keeps the stored secret unless a
    public key or JWKS URL replaces it; every process picks the change up within a second."""
    if not credential.is_jwt:
        raise ValidationError("Only a JWT credential has JWT settings.")
    jwt_settings_apply(credential=credential, jwt=jwt)
    credential.full_clean()
    credential.save()
    return credential


def jwt_settings_apply(*, credential: Credential, jwt: JwtSettings) -> None:
    """Set a JWT credential's settings on ``credential`` without saving (the admin form validates with it);
    the secret, if given, is checked for length and encrypted. Raises ValidationError."""
    credential.jwt_issuer = jwt.issuer.strip()
    credential.jwt_audience = jwt.audience.strip()
    credential.jwt_subject = jwt.subject.strip()
    credential.jwt_subject_claim = jwt.subject_claim.strip()
    credential.jwt_leeway_seconds = jwt.leeway_seconds
    credential.jwt_public_key = jwt.public_key.strip()
    credential.jwt_jwks_url = jwt.jwks_url.strip()
    if jwt.hs256_secret:
        if len(jwt.hs256_secret.encode()) < MIN_HS256_SECRET_BYTES:
            message = f"An HS256 secret must be at least {MIN_HS256_SECRET_BYTES} bytes long."
            raise ValidationError({"jwt_hs256_secret": message})
        credential.jwt_hs256_secret_encrypted = encrypt_secret(jwt.hs256_secret)
    elif credential.jwt_public_key or credential.jwt_jwks_url:
        credential.jwt_hs256_secret_encrypted = ""


def _refuse_foreign_targets(tenant: Tenant, targets: list[Target]) -> None:
    foreign = [t.slug for t in targets if t.tenant_id != tenant.id]
    if foreign:
        raise ValidationError(f"Targets of another tenant cannot be bound: {', '.join(foreign)}")


def allow_rule_create(
    *, credential: Credential, method: str, path: str, description: str = "", order: int | None = None
) -> AllowRule:
    """Add an allow-rule ``METHOD path-glob`` to a credential."""
    method = method.strip().upper()
    if order is None:
        order = credential.rules.count()
    rule = AllowRule(
        credential=credential, method=method, path=path.strip(), description=description, order=order
    )
    rule.full_clean()
    rule.save()
    return rule


def credential_rotate(*, credential: Credential) -> IssuedCredential:
    """Replace a credential's token: the old token stops working at once, rules and targets stay.

    Raises ValidationError for a JWT credential: it has no token of the gateway's to rotate (its
    identity provider rotates its keys; a new secret or key is set with ``credential_set_jwt``).
    """
    if credential.is_jwt:
        raise ValidationError("A JWT credential has no gateway token to rotate: change its key instead.")
    new = generate_token()
    credential.prefix, credential.secret_hash = new.prefix, new.secret_hash
    credential.save(update_fields=["prefix", "secret_hash"])
    return IssuedCredential(credential=credential, token=new.token)


def credential_revoke(*, credential: Credential) -> Credential:
    """Revoke a credential: every gateway process refuses it within a second. Idempotent."""
    if credential.revoked_at is None:
        credential.revoked_at = timezone.now()
        credential.save(update_fields=["revoked_at"])
    return credential


def credential_deactivate(*, credential: Credential) -> Credential:
    """Retire a credential for good, keeping its row for the audit trail. Idempotent.

    A deactivated credential is revoked (every gateway process refuses it within a second), hidden
    from the admin's default list, and gives its name back to the tenant.
    This is how a credential is "deleted": audit events keep pointing at it.
    """
    if credential.deactivated_at is not None:
        return credential
    now = timezone.now()
    credential.revoked_at = credential.revoked_at or now
    credential.deactivated_at = now
    credential.save(update_fields=["revoked_at", "deactivated_at"])
    return credential


def credentials_mark_used(*, last_used: dict[int, datetime]) -> None:
    """Record when credentials were last used, in one update per credential.

    Uses ``update()`` on purpose: recording use is not a configuration change and must not
    invalidate compiled policies.
    """
    for credential_id, when in last_used.items():
        Credential.objects.filter(pk=credential_id).update(last_used_at=when)


def expires_in(seconds: int | None) -> datetime | None:
    return None if seconds is None else timezone.now() + timedelta(seconds=seconds)


def encryption_keys_rotate() -> int:
    """Re-encrypt every stored secret (upstream secrets, JWT HS256 secrets) with the newest key; return
    how many were rotated."""
    rotated = 0
    with transaction.atomic():
        for target in Target.objects.select_for_update().exclude(auth_secret_encrypted=""):
            target.auth_secret_encrypted = rotate_secret(target.auth_secret_encrypted)
            target.save(update_fields=["auth_secret_encrypted"])
            rotated += 1
        for credential in Credential.objects.select_for_update().exclude(jwt_hs256_secret_encrypted=""):
            credential.jwt_hs256_secret_encrypted = rotate_secret(credential.jwt_hs256_secret_encrypted)
            credential.save(update_fields=["jwt_hs256_secret_encrypted"])
            rotated += 1
    return rotated


def tenant_update(*, tenant: Tenant, name: str) -> Tenant:
    """Rename a tenant. Raises ValidationError when the name is taken or blank."""
    model_update(instance=tenant, fields=["name"], data={"name": name})
    return tenant


#: The target fields ``target_update`` changes directly; the upstream credential goes through
#: ``target_set_upstream_auth`` (it is encrypted, and its rules are stated there).
TARGET_UPDATE_FIELDS = (
    "slug",
    "kind",
    "upstream_url",
    "timeout_seconds",
    "hold_new_tools",
    "validate_arguments",
)


@transaction.atomic
def target_update(
    *,
    target: Target,
    data: Mapping[str, Any],
    allowed_origins: Iterable[str] | None = None,
    trusted_url_hosts: Iterable[str] | None = None,
) -> Target:
    """Change a target's settings (``data`` keys of TARGET_UPDATE_FIELDS; the lists when given).
    Raises ValidationError naming the field (an upstream the SSRF policy refuses, a taken slug ...)."""
    values = dict(data)
    if allowed_origins is not None:
        values["allowed_origins"] = "\n".join(allowed_origins)
    if trusted_url_hosts is not None:
        values["trusted_url_hosts"] = "\n".join(h.strip().lower() for h in trusted_url_hosts if h.strip())
    fields = (*TARGET_UPDATE_FIELDS, "allowed_origins", "trusted_url_hosts")
    model_update(instance=target, fields=fields, data=values)
    return target


def target_delete(*, target: Target) -> None:
    """Delete a target (its pinned tools, meters and protections go with it; audit events stay)."""
    target.delete()


@transaction.atomic
def credential_update(
    *,
    credential: Credential,
    data: Mapping[str, Any],
    targets: Iterable[Target] | None = None,
) -> Credential:
    """Change a credential's ``name`` and ``expires_at`` (keys of ``data``) and, when given, the targets
    it may reach (of its own tenant only). Raises ValidationError naming the field; a deactivated
    credential cannot be changed."""
    if credential.deactivated_at is not None:
        raise ValidationError("A deactivated credential is kept for the audit trail and cannot be changed.")
    model_update(instance=credential, fields=("name", "expires_at"), data=data)
    if targets is not None:
        targets = list(targets)
        _refuse_foreign_targets(credential.tenant, targets)
        credential.targets.set(targets)
    return credential


def allow_rule_update(*, rule: AllowRule, data: Mapping[str, Any]) -> AllowRule:
    """Change an allow-rule's ``method``, ``path``, ``description`` or ``order``."""
    values = dict(data)
    if "method" in values:
        values["method"] = str(values["method"]).strip().upper()
    if "path" in values:
        values["path"] = str(values["path"]).strip()
    model_update(instance=rule, fields=("method", "path", "description", "order"), data=values)
    return rule


@transaction.atomic
def allow_rule_delete(*, rule: AllowRule) -> None:
    """Remove an allow-rule: the route it allowed is denied (unless another rule allows it) within a
    second in every gateway process."""
    rule.delete()


@dataclass(frozen=True)
class IssuedApiToken:
    """An API token and its secret; the secret exists only here, once."""

    api_token: ApiToken
    token: str

    def __repr__(self) -> str:
        return f"IssuedApiToken(prefix={self.api_token.prefix!r})"


def api_token_create(
    *, user: User, scope: str, name: str = "", expires_at: datetime | None = None
) -> IssuedApiToken:
    """Issue a REST API token acting as ``user`` (``scope`` read or write); the token is returned once.
    Raises ValidationError for an unknown scope or an inactive user."""
    if scope not in ApiToken.Scope.values:
        raise ValidationError({"scope": f"Unknown scope {scope!r}: choose read or write."})
    if not user.is_active:
        raise ValidationError({"user": f"User {user.get_username()!r} is inactive."})
    new = generate_token(API_TOKEN_SCHEME)
    api_token = ApiToken(
        user=user,
        name=name,
        scope=scope,
        prefix=new.prefix,
        secret_hash=new.secret_hash,
        expires_at=expires_at,
    )
    api_token.full_clean()
    api_token.save()
    return IssuedApiToken(api_token=api_token, token=new.token)


def api_token_revoke(*, api_token: ApiToken) -> ApiToken:
    """Revoke an API token: refused from the next request on. Idempotent."""
    if api_token.revoked_at is None:
        api_token.revoked_at = timezone.now()
        api_token.save(update_fields=["revoked_at"])
    return api_token


def api_token_mark_used(*, api_token: ApiToken, at_most_every: timedelta = timedelta(minutes=1)) -> None:
    """Record a token's use, at most once a minute (``update()``: bookkeeping, not a change)."""
    now = timezone.now()
    if api_token.last_used_at is None or now - api_token.last_used_at >= at_most_every:
        ApiToken.objects.filter(pk=api_token.pk).update(last_used_at=now)
        api_token.last_used_at = now
