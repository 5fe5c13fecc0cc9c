"""Reads for the OAuth server and for the proxy's token check (sync; the cache runs them in a thread)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http.request import split_domain_port, validate_host
from oauth2_provider.models import AbstractApplication, get_access_token_model

from gateway.models import Target
from gateway.oauth.models import OAuthClient
from gateway.oauth.scopes import scope_rules
from policies.compiler import CompiledRule

_PROXY_PATH = re.compile(r"/mcp/(?P<slug>[-a-zA-Z0-9_]+)/?")


def resource_slug(resource: str) -> str | None:
    """The slug of the target whose proxy URL ``resource`` is (RFC 8707), or None.

    The URL must be http(s) on a host in ALLOWED_HOSTS, with the path ``/mcp/<slug>/`` and no
    query, fragment or user; the scheme and host are not compared further, as behind a TLS proxy the
    gateway cannot tell how agents reach it.
    """
    try:
        parts = urlsplit(resource)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or parts.query or parts.fragment or "@" in parts.netloc:
        return None
    domain, _ = split_domain_port(parts.netloc)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return None
    match = _PROXY_PATH.fullmatch(parts.path)
    return match["slug"] if match else None


def resource_target(resource: str) -> Target | None:
    """The target ``resource`` names (with its tenant), or None."""
    slug = resource_slug(resource)
    if slug is None:
        return None
    return Target.objects.select_related("tenant").filter(slug=slug).first()


def oauth_client_get(*, application_id: int) -> OAuthClient | None:
    """The binding of an application to its credential (credential and tenant loaded), or None."""
    return (
        OAuthClient.objects.select_related("credential__tenant").filter(application_id=application_id).first()
    )


@dataclass(frozen=True, slots=True)
class CompiledOAuthToken:
    """What the proxy needs to know about one access token: the credential it acts as (by its prefix),
    the targets it was issued for (RFC 8707), when it expires (epoch seconds) and the rules its scopes
    narrow the credential to (None: not narrowed). Never holds the token."""

    credential_prefix: str | None
    target_ids: frozenset[int]
    expires_at: float
    scope_rules: tuple[CompiledRule, ...] | None


def compiled_oauth_token_get(*, checksum: str) -> CompiledOAuthToken | None:
    """The access token whose SHA-256 digest is ``checksum`` (two queries), or None when there is none
    (never issued, revoked, or cleared after expiry)."""
    row = (
        get_access_token_model()
        .objects.filter(token_checksum=checksum)
        .values("expires", "scope", "resource", "application__gateway_client__credential__prefix")
        .first()
    )
    if row is None:
        return None
    slugs = {slug for resource in row["resource"] or [] if (slug := resource_slug(resource))}
    target_ids = (
        frozenset(Target.objects.filter(slug__in=slugs).values_list("id", flat=True))
        if slugs
        else frozenset()
    )
    return CompiledOAuthToken(
        credential_prefix=row["application__gateway_client__credential__prefix"],
        target_ids=target_ids,
        expires_at=row["expires"].timestamp(),
        scope_rules=scope_rules(row["scope"].split()),
    )


def consent_problem(*, application: Any, target: Target, scopes: list[str]) -> str | None:
    """Why an admin may not grant ``application`` ``scopes`` at ``target`` (None when they may).

    A registered client needs its tenant to allow its kind (dynamic registration or metadata
    document), may be granted only the tenant's OAuth scopes, and stays in one tenant. A client an
    admin created may use only its own credential's targets.
    """
    binding = oauth_client_get(application_id=application.pk)
    source = application.registration_source
    if source == AbstractApplication.RegistrationSource.MANUAL:
        if binding is None:
            return "This client is not bound to a credential."
        if (
            binding.credential.tenant_id != target.tenant_id
            or not binding.credential.targets.filter(pk=target.pk).exists()
        ):
            return f"This client's credential may not use target {target.slug!r}."
        return None
    tenant = target.tenant
    allowed = (
        tenant.oauth_allow_dcr
        if source == AbstractApplication.RegistrationSource.DCR
        else tenant.oauth_allow_cimd
    )
    if not allowed:
        kind = (
            "dynamically registered"
            if source == AbstractApplication.RegistrationSource.DCR
            else "metadata-document"
        )
        return f"Tenant {tenant.name!r} does not accept {kind} OAuth clients."
    refused = [scope for scope in scopes if scope not in tenant.oauth_scope_list()]
    if refused:
        return (
            f"Tenant {tenant.name!r} does not allow the scope(s) {', '.join(refused)} for registered clients."
        )
    if binding is not None and binding.credential.tenant_id != tenant.id:
        return "This client already acts in another tenant."
    return None


def oauth_client_list(*, credential_id: int | None = None, tenant_id: int | None = None) -> list[OAuthClient]:
    """The OAuth clients bound to credentials (of one credential or tenant if given), oldest first, each
    with its application and credential loaded."""
    clients = OAuthClient.objects.select_related("application", "credential__tenant").order_by("pk")
    if credential_id is not None:
        clients = clients.filter(credential_id=credential_id)
    if tenant_id is not None:
        clients = clients.filter(credential__tenant_id=tenant_id)
    return list(clients)
