"""Writes of the OAuth server: clients an admin creates, consent to registered clients, revocation."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from oauth2_provider.models import AbstractApplication, get_application_model

from audit.changes import record_change, snapshot
from gateway.conf import gateway_settings
from gateway.models import Credential, Target
from gateway.oauth.models import OAuthClient
from gateway.oauth.scopes import MCP_SCOPE, scope_route
from gateway.services import allow_rule_create, credential_create

GRANTS = {
    "client_credentials": AbstractApplication.GRANT_CLIENT_CREDENTIALS,
    "authorization_code": AbstractApplication.GRANT_AUTHORIZATION_CODE,
}


@dataclass(frozen=True)
class IssuedOAuthClient:
    """A new OAuth client: ``client_secret`` exists only here, once (only its hash is stored)."""

    application: AbstractApplication
    binding: OAuthClient
    client_secret: str


@transaction.atomic
def oauth_client_create(
    *, credential: Credential, grant: str, name: str = "", redirect_uris: Iterable[str] = ()
) -> IssuedOAuthClient:
    """Create a confidential OAuth application whose tokens act as ``credential``.

    ``grant`` is ``client_credentials`` (a headless agent) or ``authorization_code`` (an interactive
    client, with ``redirect_uris``; PKCE is required). Raises ValidationError for an unknown grant,
    a credential that is not active or redirect URIs that are not absolute http(s) URLs.
    """
    if grant not in GRANTS:
        raise ValidationError({"grant": f"Unknown grant {grant!r}: use {' or '.join(GRANTS)}."})
    if credential.status != "active":
        raise ValidationError(
            f"Credential {credential.pk} is {credential.status}: it cannot get an OAuth client."
        )
    application = get_application_model()(
        name=name or f"{credential.name} ({grant.replace('_', ' ')})",
        client_type=AbstractApplication.CLIENT_CONFIDENTIAL,
        authorization_grant_type=GRANTS[grant],
        redirect_uris=" ".join(redirect_uris),
        registration_source=AbstractApplication.RegistrationSource.MANUAL,
    )
    secret = application.client_secret  # hashed on save
    application.full_clean()
    application.save()
    binding = _binding_create(application, credential)
    return IssuedOAuthClient(application=application, binding=binding, client_secret=secret)


@transaction.atomic
def oauth_client_delete(*, application: AbstractApplication) -> None:
    """Delete an OAuth application and every token it holds: they are refused within a second. The
    change log records the client's binding going, under its credential's tenant."""
    bindings = [
        (binding, snapshot(binding), _scope(binding.credential))
        for binding in OAuthClient.objects.select_related("credential").filter(application=application)
    ]
    application.delete()
    for binding, before, scope in bindings:
        record_change(instance=binding, before=before, after=None, scope=scope)


def _binding_create(application: AbstractApplication, credential: Credential) -> OAuthClient:
    """Bind ``application`` to ``credential``, recorded in the change log (OAuthClient is not a
    ChangeLogged model: its deletion cascades from django-oauth-toolkit's application)."""
    binding = OAuthClient.objects.create(application=application, credential=credential)
    record_change(instance=binding, before=None, after=snapshot(binding), scope=_scope(credential))
    return binding


def _scope(credential: Credential) -> tuple[int | None, int | None, int | None]:
    return (credential.tenant_id, None, credential.pk)


def scope_rules_as_routes(scopes: Iterable[str]) -> list[tuple[str, str]]:
    """The allow-rules ``(method, path)`` a consent to ``scopes`` gives a registered client's credential."""
    routes = [("*", "/**") if scope == MCP_SCOPE else scope_route(scope) for scope in scopes]
    return list(dict.fromkeys(routes))


@transaction.atomic
def oauth_consent_grant(
    *, application: AbstractApplication, target: Target, scopes: list[str]
) -> OAuthClient:
    """Bind a registered (DCR or CIMD) client to a credential on an admin's consent, and return the binding.

    The first consent creates the client's own credential in the target's tenant, bound to that
    target, with one allow-rule per granted scope (``tools:search`` -> ``POST /tools/search``); a
    later consent adds the target and the rules of newly granted scopes to it. The client's tokens
    are still bound to the one target each was issued for, and narrowed to their own scopes. An
    application an admin created keeps its credential unchanged. The caller checked the consent
    (``gateway.oauth.selectors.consent_problem``).
    """
    binding = OAuthClient.objects.select_related("credential").filter(application=application).first()
    if (
        binding is not None
        and application.registration_source == AbstractApplication.RegistrationSource.MANUAL
    ):
        return binding
    routes = scope_rules_as_routes(scopes)
    if binding is None:
        label = (application.name or "client")[:120]
        issued = credential_create(
            tenant=target.tenant, name=f"OAuth {label} #{application.pk}", targets=[target], allow=routes
        )
        return _binding_create(application, issued.credential)
    credential = binding.credential
    credential.targets.add(target)
    existing = set(credential.rules.values_list("method", "path"))
    for method, path in routes:
        if (method, path) not in existing:
            allow_rule_create(credential=credential, method=method, path=path, description="OAuth consent")
    return binding


def oauth_unconsented_clients_prune(*, now: datetime | None = None) -> int:
    """Delete the clients registered by dynamic registration or a metadata document that no admin has
    consented to (so bound to no credential) within GATEWAY_OAUTH_UNCONSENTED_CLIENT_HOURS; return
    how many. Clients an admin created, and every consented one, are kept."""
    hours = gateway_settings().oauth_unconsented_client_hours
    cutoff = (now or timezone.now()) - timedelta(hours=hours)
    Application = get_application_model()
    stale = Application.objects.filter(
        registration_source__in=[Application.RegistrationSource.DCR, Application.RegistrationSource.CIMD],
        gateway_client__isnull=True,
        created__lt=cutoff,
    )
    deleted = 0
    for pks in _chunks(list(stale.values_list("pk", flat=True)), 1000):
        _, per_model = Application.objects.filter(pk__in=pks).delete()
        deleted += per_model.get(Application._meta.label, 0)
    return deleted


def _chunks(items: list[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
