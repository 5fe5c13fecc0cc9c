"""JSON Web Key Sets of the JWT credentials' identity providers, fetched and cached per URL.

Keys are used for ``JWKS_CACHE_SECONDS``; a token naming a ``kid`` not in the set triggers a
refetch, but one URL is fetched at most once per ``JWKS_REFETCH_SECONDS`` (a flood of made-up kids
costs the identity provider nothing). Concurrent misses of one URL wait for one fetch, which is
bounded by ``JWKS_TIMEOUT_SECONDS`` and ``JWKS_MAX_BYTES``; calls for other URLs, or with a kid
already known, never wait. When a refresh fails the keys fetched before stay in use. Only RSA
(RS256, 2048 bits or more) and EC P-256 (ES256) signing keys are kept; any other key is ignored.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx2
import orjson
from jwt import PyJWK
from jwt.exceptions import PyJWKError

from gateway.conf import GatewaySettings
from gateway.egress import EgressRefused, egress_policy
from gateway.jwt_keys import ES256, RS256, UnusableKey, jwks_url_form_problem, public_key_algorithm

logger = logging.getLogger(__name__)

_MAX_KEYS = 100
_SIGNING_KEY_TYPES = {"RSA": RS256, "EC": ES256}


class JwksError(Exception):
    """No key to verify with; the message is the audit reason (never a key or a token)."""


@dataclass(slots=True)
class _Entry:
    keys: dict[str, tuple[object, str]] = field(default_factory=dict)  # kid ("" when none) -> key, alg
    fetched_at: float = float("-inf")  # last successful fetch (monotonic)
    attempted_at: float = float("-inf")  # last fetch, successful or not
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def find(self, kid: str | None, algorithm: str) -> object | None:
        if kid is not None:
            found = self.keys.get(kid)
            return found[0] if found is not None and found[1] == algorithm else None
        fitting = [key for key, alg in self.keys.values() if alg == algorithm]
        return fitting[0] if len(fitting) == 1 else None  # no kid: only an unambiguous key


class JwksCache:
    """The keys of every JWKS URL this event loop verified tokens with (one per runtime)."""

    def __init__(self, conf: GatewaySettings) -> None:
        self.timeout = conf.jwks_timeout_seconds
        self.max_bytes = conf.jwks_max_bytes
        self.ttl = conf.jwks_cache_seconds
        self.refetch_seconds = conf.jwks_refetch_seconds
        self._entries: dict[str, _Entry] = {}
        self._client: httpx2.AsyncClient | None = None

    async def key(self, url: str, kid: str | None, algorithm: str) -> object:
        """The key of ``url``'s set with id ``kid`` (or its only key for ``algorithm`` when the token
        names none) that signs with ``algorithm``. Raises JwksError when there is none."""
        entry = self._entries.get(url)
        if entry is None:
            entry = self._entries[url] = _Entry()
        found = entry.find(kid, algorithm)
        if found is not None and time.monotonic() - entry.fetched_at < self.ttl:
            return found
        if time.monotonic() - entry.attempted_at >= self.refetch_seconds:
            await self._refresh(url, entry)
            found = entry.find(kid, algorithm)
        if found is not None:
            return found
        if entry.fetched_at == float("-inf"):
            raise JwksError("JWKS could not be fetched")
        raise JwksError("JWT key id not in the issuer's JWKS")

    async def _refresh(self, url: str, entry: _Entry) -> None:
        attempted = entry.attempted_at
        async with entry.lock:
            if entry.attempted_at != attempted:
                return  # another call fetched while this one waited
            entry.attempted_at = time.monotonic()
            try:
                keys = await asyncio.wait_for(self._fetch(url), self.timeout)
            except (JwksError, httpx2.HTTPError, TimeoutError, ValueError) as exc:
                shown = urlsplit(url)._replace(query="", fragment="").geturl()  # a query might hold a secret
                reason = exc if isinstance(exc, JwksError) else type(exc).__name__
                logger.warning("JWKS %s not refreshed: %s", shown, reason)
                return
            entry.keys, entry.fetched_at = keys, time.monotonic()

    async def _fetch(self, url: str) -> dict[str, tuple[object, str]]:
        # Judged again at each fetch, as its host resolves now, and the request pinned to the address
        # judged (DNS rebinding); resolving blocks, so it runs off the event loop (a fetch is rare:
        # keys are cached, refetches bounded).
        problem = jwks_url_form_problem(url)
        if problem:
            raise JwksError(problem)
        try:
            pinned = await asyncio.to_thread(egress_policy().pinned, url)
        except EgressRefused as exc:
            raise JwksError(str(exc)) from None
        client = self._client_for_loop()
        headers = {"accept": "application/json", "host": pinned.host_header}
        async with client.stream(
            "GET", pinned.url, headers=headers, extensions=pinned.extensions
        ) as response:
            if response.status_code != 200:
                raise JwksError(f"HTTP {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > self.max_bytes:
                    raise JwksError(f"larger than {self.max_bytes} bytes")
        return signing_keys(orjson.loads(body))

    def _client_for_loop(self) -> httpx2.AsyncClient:
        if self._client is None:
            self._client = httpx2.AsyncClient(timeout=self.timeout, follow_redirects=False, trust_env=False)
        return self._client

    def forget(self) -> None:
        """Drop every cached set (tests and key-rotation drills)."""
        self._entries.clear()

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def signing_keys(document: Any) -> dict[str, tuple[object, str]]:
    """The usable signing keys of a JWKS document by kid: RSA (RS256) and EC P-256 (ES256) public
    keys; symmetric keys, encryption keys, private keys and keys whose ``alg`` disagrees are ignored."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise JwksError("not a JWKS document (no keys list)")
    keys: dict[str, tuple[object, str]] = {}
    for jwk in document["keys"][:_MAX_KEYS]:
        parsed = _signing_key(jwk)
        if parsed is not None:
            kid = jwk.get("kid")
            keys.setdefault(kid if isinstance(kid, str) else "", parsed)
    return keys


def _signing_key(jwk: Any) -> tuple[object, str] | None:
    if not isinstance(jwk, dict) or jwk.get("kty") not in _SIGNING_KEY_TYPES:
        return None
    if jwk.get("use", "sig") != "sig" or "d" in jwk:
        return None
    try:
        key = PyJWK(jwk, algorithm=_SIGNING_KEY_TYPES[jwk["kty"]]).key
        algorithm = public_key_algorithm(key)
    except (PyJWKError, UnusableKey, ValueError, TypeError, KeyError):
        return None
    if jwk.get("alg", algorithm) != algorithm:
        return None
    return key, algorithm
