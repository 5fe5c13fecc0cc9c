"""Brute-force protection: a client address that keeps failing authentication is refused for a while.

Every failed authentication of a presented token (unknown prefix, wrong secret, malformed, forged or
expired JWT, revoked or expired credential) counts against the client's address in a sliding minute,
kept by the meters' limiter: in Redis when ``REDIS_URL`` is set (one count shared by every gateway
process), else in this process's memory. Once an address has failed
``GATEWAY_AUTH_FAILURES_PER_MINUTE`` times in the last minute, its calls are refused (429 with
Retry-After) before any credential is looked up, until enough of those failures are a minute old.

- The address is the TCP peer's (``ctx.client_ip``): no ``X-Forwarded-For`` is trusted. An IPv6
  address counts as its /64 (one host usually holds a whole /64); an IPv4-mapped one as its IPv4.
- A call without any credential is not a failure (no guess was made: it is how an MCP client starts
  OAuth discovery), nor is a valid credential used at a target it is not bound to (403).
- A success does not reset the count: one valid credential of the attacker's own would otherwise
  buy unlimited guesses, interleaved with it. Failures age out of the minute instead.
- A valid call costs no round trip: the store is read only for an address this process has seen
  fail (or refused) in the last minute. So each process may let one more guess through before it
  learns of failures counted by the others: at most ``limit + processes - 1`` guesses per minute.
- When the store cannot be reached the protection fails open (valid agents keep working); the
  checks and failures it could not count are shown in ``/readyz`` details.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from metering.compiler import REQUEST_COUNT, CompiledMeter
from metering.headers import seconds
from metering.limiter import Charge, MeterStoreUnavailable
from metering.runtime import MeterRuntime

# A failure counts for a sliding minute, plus the one-second bucket it was counted in.
_WATCH_SECONDS = 61.0
# Addresses watched per process: beyond it the oldest is forgotten (it only loses its early check).
MAX_WATCHED_ADDRESSES = 100_000


def address_key(client_ip: str) -> str:
    """What failures are counted against: the IPv4 address, or the /64 of an IPv6 address."""
    if ":" not in client_ip:
        return client_ip
    try:
        address = ipaddress.IPv6Address(client_ip.split("%", 1)[0])
    except ValueError:
        return client_ip
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(ipaddress.IPv6Network((address, 64), strict=False))


def _address_meter(address: str, limit: int) -> CompiledMeter:
    return CompiledMeter(
        id=0,
        tenant_id=0,
        scope="address",
        scope_id=0,
        kind=REQUEST_COUNT,
        window="minute",
        limit=float(limit),
        fail_mode="open",
        route="",
        route_method="*",
        route_regex=None,
        value_paths=(),
        key=f"gw:authfail:{address}",
    )


class AuthFailureGuard:
    """One event loop's view of the failed authentications per client address.

    ``limit`` is GATEWAY_AUTH_FAILURES_PER_MINUTE (0: off). The counts live in the meters' limiter
    and follow the meters' clock, so tests move both together.
    """

    def __init__(self, limit: int, meters: MeterRuntime) -> None:
        self.limit = limit
        self._meters = meters
        # address -> until when (meters' clock) it may still have failures counted
        self._watched: dict[str, float] = {}
        self.checks_unenforced = 0
        self.failures_not_counted = 0

    async def retry_after(self, client_ip: str | None) -> int:
        """Seconds until ``client_ip`` may try to authenticate again; 0 when it may now.

        Reads the store only for an address watched here; fails open when the store is down.
        """
        if not self._watched or not self.limit or client_ip is None:
            return 0
        address = address_key(client_ip)
        now = self._meters.clock()
        until = self._watched.get(address)
        if until is None:
            return 0
        if until <= now:
            del self._watched[address]
            return 0
        try:
            result = await self._meters.limiter.check((self._charge(address, 0.0),), now)
        except MeterStoreUnavailable:
            self.checks_unenforced += 1
            return 0
        if result.readings[0].used <= 0:
            del self._watched[address]
            return 0
        self._watch(address, now)
        return 0 if result.refused is None else max(1, seconds(result.retry_ms))

    async def record_failure(self, client_ip: str | None) -> None:
        """Count one failed authentication against ``client_ip``; a store outage is only counted."""
        if not self.limit or client_ip is None:
            return
        address = address_key(client_ip)
        now = self._meters.clock()
        self._watch(address, now)
        try:
            await self._meters.limiter.add((self._charge(address, 1.0),), now)
        except MeterStoreUnavailable:
            self.failures_not_counted += 1

    def status(self) -> dict[str, Any]:
        """For ``/readyz`` details: the limit, and what could not be enforced since start-up."""
        return {
            "limit_per_minute": self.limit,
            "store": self._meters.health.store,
            "addresses_watched": len(self._watched),
            "checks_unenforced": self.checks_unenforced,
            "failures_not_counted": self.failures_not_counted,
        }

    def _charge(self, address: str, amount: float) -> Charge:
        return Charge(meter=_address_meter(address, self.limit), amount=amount, needs_room=False)

    def _watch(self, address: str, now: float) -> None:
        self._watched.pop(address, None)  # re-inserted last: the dictionary's order is by recency
        if len(self._watched) >= MAX_WATCHED_ADDRESSES:
            del self._watched[next(iter(self._watched))]
        self._watched[address] = now + _WATCH_SECONDS
