"""The per-process cache of compiled meters, by (credential, target).

An entry is valid while the policy cache serves the very same compiled credential and target it
was built for. Every configuration change (meters included: see ``policies.invalidation``) empties
the policy cache, which then hands out new compiled objects, so a changed meter is reloaded on the
next call of every process exactly as a changed rule is, with no invalidation path of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.singleflight import MISSING, SingleFlight
from metering.compiler import CompiledMeter
from metering.selectors import compiled_meters_for_call
from policies.cache import load_configuration
from policies.compiler import CompiledCredential, CompiledTarget


@dataclass(frozen=True, slots=True)
class _Entry:
    credential: CompiledCredential
    target: CompiledTarget
    meters: tuple[CompiledMeter, ...]


class MeterCache:
    """Compiled meters by (credential id, target id); a warm lookup is one dictionary read."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._entries: dict[tuple[int, int], _Entry] = {}
        self._flights = SingleFlight()

    async def meters(
        self, credential: CompiledCredential, target: CompiledTarget
    ) -> tuple[CompiledMeter, ...]:
        key = (credential.id, target.id)

        def cached() -> object:
            entry = self._entries.get(key)
            if entry is not None and entry.credential is credential and entry.target is target:
                return entry.meters
            return MISSING

        async def load() -> tuple[CompiledMeter, ...]:
            meters = await load_configuration(
                compiled_meters_for_call,
                tenant_id=credential.tenant_id,
                target_id=target.id,
                credential_id=credential.id,
            )
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key] = _Entry(credential, target, meters)
            return meters

        meters: tuple[CompiledMeter, ...] = await self._flights.get(key, cached, load)
        return meters

    def clear(self) -> None:
        self._entries = {}


meter_cache = MeterCache()
