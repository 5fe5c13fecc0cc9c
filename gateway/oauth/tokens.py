"""The OAuth tokens the gateway issues: ``mgo_<random>_<tag>`` access tokens, ``mgr_...`` refresh tokens.

The tag is an HMAC of the random part under a key derived from SECRET_KEY, so the proxy refuses a
made-up token from memory, before any cache or database look-up (a flood of guesses costs a hash
each). Only the SHA-256 digest of a token is stored (django-oauth-toolkit's hashed token storage).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from functools import cache
from typing import Any

from django.conf import settings

ACCESS_SCHEME = "mgo"
REFRESH_SCHEME = "mgr"
_RANDOM_BYTES = 32
_RANDOM_LENGTH = 64  # hex: no "_" inside a part
_TAG_LENGTH = 22


@cache
def _tag_key() -> bytes:
    return hmac.new(settings.SECRET_KEY.encode(), b"gateway:oauth-token-tag", hashlib.sha256).digest()


def _tag(scheme: str, random_part: str) -> str:
    mac = hmac.new(_tag_key(), f"{scheme}_{random_part}".encode(), hashlib.sha256).hexdigest()
    return mac[:_TAG_LENGTH]


def _mint(scheme: str) -> str:
    random_part = secrets.token_hex(_RANDOM_BYTES)
    return f"{scheme}_{random_part}_{_tag(scheme, random_part)}"


def generate_access_token(request: Any = None, refresh_token: bool = False) -> str:
    """oauthlib's ``token_generator``: a new access token."""
    return _mint(ACCESS_SCHEME)


def generate_refresh_token(request: Any = None) -> str:
    """oauthlib's ``refresh_token_generator``: a new refresh token (never accepted by the proxy)."""
    return _mint(REFRESH_SCHEME)


def looks_like_access_token(token: str) -> bool:
    """Whether ``token`` has the shape of a gateway OAuth access token (it may still be forged)."""
    return token.startswith(ACCESS_SCHEME + "_")


def access_token_authentic(token: str) -> bool:
    """Whether ``token`` is an access token this gateway minted (its tag checks, in constant time)."""
    parts = token.split("_")
    if len(parts) != 3 or parts[0] != ACCESS_SCHEME or len(parts[1]) != _RANDOM_LENGTH:
        return False
    return hmac.compare_digest(parts[2].encode(), _tag(ACCESS_SCHEME, parts[1]).encode())


def token_checksum(token: str) -> str:
    """The digest django-oauth-toolkit stores and looks a token up by."""
    return hashlib.sha256(token.encode()).hexdigest()
