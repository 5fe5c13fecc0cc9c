"""The per-process cache of compiled policies.

Entries are loaded on first use (a thread runs the ORM read), then served from memory: a warm
proxied call makes no database query. Any configuration change empties the cache, in this process
at once and in the others through :mod:`policies.invalidation` (Redis pub/sub, or a version check
at most once per ``POLICY_POLL_SECONDS``). Unknown slugs are cached too (as ``None``). The set of
every token prefix that exists is loaded once per configuration version, so a token with an
unknown prefix is refused from memory: a flood of random tokens costs no query at all. Likewise
the JWT credentials' issuers and subjects (:class:`JwtDirectory`) are loaded once per version, and
verified JWTs are remembered (:class:`VerifiedJwts`) until an invalidation or their expiry.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.db import DatabaseError, close_old_connections

from gateway.proxy.errors import ConfigurationUnavailable
from gateway.singleflight import MISSING, SingleFlight
from policies.compiler import CompiledCredential, CompiledTarget
from policies.selectors import (
    JwtDirectory,
    compiled_credential_get,
    compiled_target_get,
    credential_prefixes_get,
    jwt_directory_get,
)

T = TypeVar("T")


def _run_and_release(fn: Callable[..., T], **kwargs: object) -> T:
    try:
        return fn(**kwargs)
    finally:
        close_old_connections()


async def load_configuration(fn: Callable[..., T], **kwargs: object) -> T:
    """Run the ORM read ``fn`` off the event loop for a cache miss of the hot path.

    Raises ConfigurationUnavailable (503) when the database cannot be read, so a cold call during
    an outage gets a clear answer instead of a 500.
    """
    try:
        return await sync_to_async(_run_and_release)(fn, **kwargs)
    except DatabaseError as exc:
        reason = f"the configuration database is unavailable ({type(exc).__name__})"
        raise ConfigurationUnavailable(
            f"Policy cannot be loaded: {reason}", headers={"Retry-After": "1"}
        ) from None


class VerifiedJwts:
    """JWTs whose signature and claims were verified: SHA-256 digest of the token -> the credential's
    prefix, each until ``until`` (never past the token's ``exp``). A bounded LRU; the cache empties
    it on every invalidation, so a changed key or setting is applied to the next call. The token
    itself is never kept."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[bytes, tuple[str, float]] = OrderedDict()

    def get(self, digest: bytes, now: float) -> str | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        prefix, until = entry
        if now >= until:
            del self._entries[digest]
            return None
        self._entries.move_to_end(digest)
        return prefix

    def put(self, digest: bytes, prefix: str, until: float) -> None:
        self._entries[digest] = (prefix, until)
        self._entries.move_to_end(digest)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


class PolicyCache:
    """Compiled targets by slug, compiled credentials by token prefix, the set of all prefixes, the JWT
    directory and the verified JWTs.

    Loads are single-flight: calls that miss the same key while it is loading wait for that load
    instead of each querying the database (a cold start under load would otherwise run one load
    per concurrent call).
    """

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._tables: dict[str, dict[str, Any]] = _empty_tables()
        self._flights = SingleFlight()
        self._generation = 0
        self._emptied_at = time.monotonic()
        self._version: int | None = None
        self.verified_jwts = VerifiedJwts()

    def invalidate(self) -> None:
        """Forget every compiled entry and verified JWT; they are reloaded (re-verified) on next use."""
        self._generation += 1
        self._emptied_at = time.monotonic()
        self._tables = _empty_tables()
        self.verified_jwts.clear()

    def stats(self) -> tuple[float, int]:
        """Seconds since the cache was last emptied, and how many compiled targets and credentials
        it holds (for the metrics)."""
        entries = len(self._tables["target"]) + len(self._tables["credential"])
        return time.monotonic() - self._emptied_at, entries

    @property
    def generation(self) -> int:
        """How many times the cache was invalidated (a test tells an outside invalidation by it)."""
        return self._generation

    def observe_version(self, version: int) -> None:
        """Record the configuration version seen in the database; a new one invalidates."""
        if self._version is not None and version != self._version:
            self.invalidate()
        self._version = version

    async def target(self, slug: str) -> CompiledTarget | None:
        compiled: CompiledTarget | None = await self._get("target", slug, compiled_target_get, slug=slug)
        return compiled

    async def credential(self, prefix: str) -> CompiledCredential | None:
        """The credential whose token prefix is ``prefix``; an unknown prefix costs no query."""
        if prefix not in await self._known_prefixes():
            return None
        compiled: CompiledCredential | None = await self._get(
            "credential", prefix, compiled_credential_get, prefix=prefix
        )
        return compiled

    async def _known_prefixes(self) -> frozenset[str]:
        prefixes: frozenset[str] = await self._get("whole", "prefixes", credential_prefixes_get)
        return prefixes

    async def oauth_token(self, checksum: str) -> Any:
        """The compiled OAuth access token whose SHA-256 digest is ``checksum`` (a
        ``gateway.oauth.selectors.CompiledOAuthToken``), or None; kept until the next invalidation
        (revoking a token invalidates)."""
        from gateway.oauth.selectors import compiled_oauth_token_get

        return await self._get("oauth-token", checksum, compiled_oauth_token_get, checksum=checksum)

    async def jwt_directory(self) -> JwtDirectory:
        """The JWT credentials' issuers and subjects, loaded once per configuration version."""
        directory: JwtDirectory = await self._get("whole", "jwt-directory", jwt_directory_get)
        return directory

    async def _get(self, kind: str, key: str, loader: Callable[..., Any], **kwargs: object) -> Any:
        async def load() -> Any:
            generation = self._generation
            compiled = await load_configuration(loader, **kwargs)
            # A load that raced with an invalidation may hold stale data: do not keep it.
            if generation == self._generation:
                table = self._tables[kind]
                if len(table) >= self.max_entries:
                    table.clear()
                table[key] = compiled
            return compiled

        return await self._flights.get((kind, key), lambda: self._tables[kind].get(key, MISSING), load)


def _empty_tables() -> dict[str, dict[str, Any]]:
    """Compiled targets by slug, credentials by prefix, OAuth access tokens by digest, and the loads that
    cover the whole configuration (every token prefix, the JWT directory), each once per version."""
    return {"target": {}, "credential": {}, "whole": {}, "oauth-token": {}}


policy_cache = PolicyCache()
