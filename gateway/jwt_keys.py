"""Which JWT algorithm a verification key allows, and which JWKS URLs may be fetched.

One rule, stated once: an HS256 shared secret allows HS256 only; an RSA public key (2048 bits or
more) allows RS256 only; an EC public key on P-256 allows ES256 only. ``none`` is never allowed,
so a token cannot pick a weaker check than its credential's key demands (algorithm confusion).
"""

from __future__ import annotations

import ipaddress
from typing import cast
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from django.conf import settings

HS256 = "HS256"
RS256 = "RS256"
ES256 = "ES256"
MIN_RSA_BITS = 2048
MIN_HS256_SECRET_BYTES = 32  # RFC 7518 3.2: a key at least as long as the hash output

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


class UnusableKey(ValueError):
    """A key that cannot verify RS256 or ES256 tokens; the message says why (never the key)."""


def public_key_algorithm(key: object) -> str:
    """RS256 for an RSA key of 2048 bits or more, ES256 for a P-256 key; UnusableKey otherwise."""
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise UnusableKey(
                f"an RSA key must have at least {MIN_RSA_BITS} bits, this one has {key.key_size}"
            )
        return RS256
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise UnusableKey(f"an EC key must be on P-256 (ES256), this one is on {key.curve.name}")
        return ES256
    raise UnusableKey("only RSA (RS256) and EC P-256 (ES256) public keys are supported")


def load_public_key(pem: str) -> tuple[PublicKey, str]:
    """The public key in ``pem`` and the one algorithm it allows; UnusableKey when it is not one."""
    try:
        key = load_pem_public_key(pem.strip().encode())
    except (ValueError, TypeError):
        raise UnusableKey("not a PEM public key (-----BEGIN PUBLIC KEY-----)") from None
    algorithm = public_key_algorithm(key)  # raises for any other key type
    return cast(PublicKey, key), algorithm


def loopback_http_allowed() -> bool:
    """Plain HTTP JWKS URLs on a loopback address are accepted with DEBUG on, or when the Django
    setting ``JWKS_ALLOW_LOOPBACK_HTTP`` is true (the test settings set it; it is not read from the
    environment, so a production deployment cannot turn it on by accident)."""
    return bool(settings.DEBUG or getattr(settings, "JWKS_ALLOW_LOOPBACK_HTTP", False))


def jwks_url_problem(url: str) -> str | None:
    """Why ``url`` may not be fetched as a JWKS (None when it may): its form
    (:func:`jwks_url_form_problem`), then the upstream address policy on what its host resolves to now."""
    problem = jwks_url_form_problem(url)
    if problem or urlsplit(url).scheme == "http":
        return problem
    return _address_problem(url)


def jwks_url_form_problem(url: str) -> str | None:
    """Why ``url``'s form rules it out as a JWKS URL: HTTPS only, except loopback HTTP when
    :func:`loopback_http_allowed`; no user name or password."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        return "a JWKS URL must not carry a user name or password"
    if parts.scheme == "http" and _is_loopback(parts.hostname or "") and loopback_http_allowed():
        return None
    if parts.scheme != "https" or not parts.hostname:
        return "a JWKS URL must use https://"
    return None


def _address_problem(url: str) -> str | None:
    """The upstream address policy (gateway/egress.py) applies to JWKS hosts too: no metadata,
    link-local or (unless allowed) private or loopback address, as its host resolves now."""
    from gateway.egress import EgressRefused, egress_policy

    try:
        egress_policy().check_url(url)
    except EgressRefused as error:
        return str(error)
    return None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
