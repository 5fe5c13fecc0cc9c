"""Verifying a JWT presented as an agent's bearer token.

The header and claims are read unverified only to find the candidate credential (issuer and subject
claim); everything the gateway then relies on comes from :func:`verify`, which checks the signature
with that credential's own key, the algorithm against the key's type (HS256 only with a shared
secret, RS256 / ES256 only with a public key of that type; ``none`` never), ``iss``, ``aud``,
``exp`` (required), ``nbf``, ``iat`` and the subject, with the credential's leeway. Each refusal
carries a precise audit reason; the token is never logged, kept or put in a message.
"""

from __future__ import annotations

import base64
import binascii
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt
import orjson
from jwt import exceptions

from gateway.jwt_keys import ES256, HS256, RS256
from gateway.proxy.errors import AuthenticationFailed
from gateway.proxy.jwks import JwksCache, JwksError
from policies.compiler import CompiledJwt

MAX_JWT_LENGTH = 16 * 1024
_B64URL = frozenset(string.ascii_letters + string.digits + "-_")
_JWKS_ALGORITHMS = frozenset({RS256, ES256})

# PyJWT's errors, most specific first, as audit reasons.
_REASONS: tuple[tuple[type[Exception], str], ...] = (
    (exceptions.ExpiredSignatureError, "JWT expired"),
    (exceptions.ImmatureSignatureError, "JWT not yet valid (nbf or iat in the future)"),
    (exceptions.InvalidAudienceError, "JWT audience does not match"),
    (exceptions.InvalidIssuerError, "JWT issuer does not match"),
    (exceptions.InvalidSignatureError, "JWT signature does not verify"),
    (exceptions.MissingRequiredClaimError, "JWT lacks a required claim (exp, iss or aud)"),
    (exceptions.InvalidAlgorithmError, "JWT algorithm not allowed"),
    (exceptions.InvalidIssuedAtError, "JWT iat is not a number"),
    (exceptions.InvalidKeyError, "JWT key unusable"),
)


@dataclass(frozen=True, slots=True)
class UnverifiedJwt:
    """A JWT's header and claims as presented: only fit to find which credential to verify it with."""

    header: Mapping[str, Any]
    claims: Mapping[str, Any]

    @property
    def issuer(self) -> str | None:
        issuer = self.claims.get("iss")
        return issuer if isinstance(issuer, str) else None


def looks_like_jwt(token: str) -> bool:
    """Three base64url parts (the signature may be empty: ``alg: none`` is refused, not ignored)."""
    parts = token.split(".")
    return (
        len(parts) == 3
        and bool(parts[0])
        and bool(parts[1])
        and all(_B64URL.issuperset(part) for part in parts)
    )


def read_unverified(token: str) -> UnverifiedJwt:
    """The header and claims of a token :func:`looks_like_jwt` accepted; AuthenticationFailed when
    they are not JSON objects or the token is too long."""
    if len(token) > MAX_JWT_LENGTH:
        raise AuthenticationFailed("Malformed JWT")
    header_part, claims_part, _ = token.split(".")
    header, claims = _json_object(header_part), _json_object(claims_part)
    if header is None or claims is None:
        raise AuthenticationFailed("Malformed JWT")
    return UnverifiedJwt(header=header, claims=claims)


def _json_object(part: str) -> dict[str, Any] | None:
    try:
        value = orjson.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (binascii.Error, ValueError):
        return None
    return value if isinstance(value, dict) else None


async def verify(token: str, unverified: UnverifiedJwt, settings: CompiledJwt, jwks: JwksCache) -> float:
    """Verify ``token`` with the credential's ``settings``; return its ``exp``.

    Raises AuthenticationFailed with the precise reason for any refusal.
    """
    algorithm = unverified.header.get("alg")
    key = await _verification_key(unverified, algorithm, settings, jwks)
    try:
        claims = jwt.decode(
            token,
            key,  # type: ignore[arg-type]  # bytes or a cryptography public key, per algorithm
            algorithms=[str(algorithm)],
            audience=settings.audience,
            issuer=settings.issuer,
            leeway=settings.leeway_seconds,
            options={"require": ["exp", "iss", "aud"], "verify_iat": True, "verify_nbf": True},
        )
    except exceptions.InvalidTokenError as exc:
        raise AuthenticationFailed(_reason(exc)) from None
    if claims.get(settings.subject_claim) != settings.subject:
        raise AuthenticationFailed("JWT subject does not match its credential")
    return float(claims["exp"])


async def _verification_key(
    unverified: UnverifiedJwt, algorithm: object, settings: CompiledJwt, jwks: JwksCache
) -> object:
    """The key the credential verifies ``algorithm`` with; algorithm confusion is refused here."""
    if settings.jwks_url:
        if algorithm not in _JWKS_ALGORITHMS:
            raise AuthenticationFailed("JWT algorithm not allowed")
        kid = unverified.header.get("kid")
        try:
            return await jwks.key(settings.jwks_url, kid if isinstance(kid, str) else None, str(algorithm))
        except JwksError as exc:
            raise AuthenticationFailed(str(exc)) from None
    if algorithm != settings.algorithm or algorithm not in (HS256, RS256, ES256):
        raise AuthenticationFailed("JWT algorithm not allowed")
    return settings.key


def _reason(exc: Exception) -> str:
    for kind, reason in _REASONS:
        if isinstance(exc, kind):
            return reason
    return "Malformed JWT"
