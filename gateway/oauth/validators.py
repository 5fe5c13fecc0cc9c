"""django-oauth-toolkit's request validator, with the gateway's rules for issuing a token."""

from __future__ import annotations

from typing import Any

from oauth2_provider.oauth2_validators import OAuth2Validator
from oauthlib.oauth2.rfc6749 import errors

from gateway.oauth.scopes import scope_problem
from gateway.oauth.selectors import oauth_client_get, resource_target


class GatewayOAuth2Validator(OAuth2Validator):  # type: ignore[misc]
    """Issues a token only for a target its application's credential may use.

    Every token names exactly one resource, the proxy URL of a target (RFC 8707): a client
    credentials request must send it, an authorization code or refresh token carries the one the
    admin consented to. The application must be bound to a live credential of that target's tenant.
    Any well-formed gateway scope may be asked for (a scope narrows, never widens, the credential);
    registered clients were limited to their tenant's scopes at consent.
    """

    def validate_scopes(
        self, client_id: str, scopes: list[str], client: Any, request: Any, *args: Any, **kwargs: Any
    ) -> bool:
        return all(scope_problem(scope) is None for scope in scopes)

    def _check_and_set_request_resource(self, request: Any) -> None:
        super()._check_and_set_request_resource(request)
        resources = list(request.resource or [])
        if len(resources) != 1:
            raise errors.CustomOAuth2Error(
                error="invalid_target",
                description="Name exactly one resource: the proxy URL of a target, e.g. https://gateway/mcp/docs/",
                request=request,
            )
        problem = token_problem(application_id=request.client.pk, resource=resources[0])
        if problem:
            raise errors.CustomOAuth2Error(error="invalid_target", description=problem, request=request)


def token_problem(*, application_id: int, resource: str) -> str | None:
    """Why an application may not get a token for ``resource`` (None when it may)."""
    target = resource_target(resource)
    if target is None:
        return "The resource is not the proxy URL of a target of this gateway."
    binding = oauth_client_get(application_id=application_id)
    if binding is None:
        return "This client is not bound to a credential: an admin must consent to it first."
    credential = binding.credential
    if credential.status != "active":
        return "This client's credential is not active."
    if credential.tenant_id != target.tenant_id or not credential.targets.filter(pk=target.pk).exists():
        return "This client's credential may not use that target."
    return None
