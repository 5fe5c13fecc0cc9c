"""How the REST API knows who calls: a user's API token, or the dashboard's session (with CSRF).

``Authorization: Token <t>`` or ``Bearer <t>``: the token's prefix finds the row, its SHA-256 digest is
compared in constant time, and a revoked or expired token, or one of an inactive user, is refused with
401. The presented token is never logged nor echoed in an error.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from gateway.models import ApiToken
from gateway.services import api_token_mark_used
from gateway.tokens import API_TOKEN_SCHEME, token_matches, token_prefix

KEYWORDS = ("token", "bearer")
REFUSED = "Invalid, expired or revoked API token."


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """Authenticates ``Token`` / ``Bearer`` API tokens; ``request.auth`` is the ApiToken row."""

    def authenticate(self, request: Request) -> tuple[User, ApiToken] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower().decode(errors="replace") not in KEYWORDS:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "Send 'Authorization: Token <token>' (one token, no spaces)."
            )
        try:
            presented = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(REFUSED) from None
        api_token = _usable_token(presented)
        if api_token is None:
            raise exceptions.AuthenticationFailed(REFUSED)
        api_token_mark_used(api_token=api_token)
        return api_token.user, api_token

    def authenticate_header(self, request: Request) -> str:
        return 'Token realm="api"'


def _usable_token(presented: str) -> ApiToken | None:
    prefix = token_prefix(presented, API_TOKEN_SCHEME)
    if prefix is None:
        return None
    api_token = ApiToken.objects.select_related("user").filter(prefix=prefix).first()
    if api_token is None or not token_matches(presented, api_token.secret_hash):
        return None
    if not api_token.is_usable or not api_token.user.is_active:
        return None
    return api_token


class SessionAuthentication(authentication.SessionAuthentication):
    """The dashboard's session, with DRF's CSRF check on unsafe methods (as the admin has)."""

    def authenticate_header(self, request: Request) -> str:
        # A 401, not a 403, for an unauthenticated call: the client should present credentials.
        return 'Token realm="api"'


def token_scope(request: Any) -> str | None:
    """The scope of the API token that authenticated ``request`` (None for a session)."""
    auth = getattr(request, "auth", None)
    return auth.scope if isinstance(auth, ApiToken) else None
