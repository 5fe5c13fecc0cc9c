"""Configuration changes reach every gateway process."""

from __future__ import annotations

import asyncio
import time

from django.conf import settings

from gateway.services import credential_revoke
from policies.cache import PolicyCache
from policies.invalidation import bump_policy_version
from policies.models import PolicyVersion
from policies.watch import listen_for_invalidations
from tests.conftest import issue_credential, require_service


def test_every_change_bumps_the_policy_version(transactional_db, tenant, target):
    before = PolicyVersion.objects.get(pk=1).version
    issued = issue_credential(tenant, target, "POST /tools/search")
    credential_revoke(credential=issued.credential)
    assert PolicyVersion.objects.get(pk=1).version > before


def test_a_change_published_on_redis_empties_another_process_cache(transactional_db):
    if not settings.REDIS_URL:
        require_service("Redis", "REDIS_URL is not set")
    other_process_cache = PolicyCache()

    async def scenario() -> float:
        other_process_cache._tables["credential"]["k"] = None  # a compiled entry held by the other process
        listener = asyncio.create_task(listen_for_invalidations(other_process_cache))
        await asyncio.sleep(0.3)  # subscribed
        other_process_cache._tables["credential"]["k"] = None
        started = time.monotonic()
        await asyncio.to_thread(bump_policy_version)
        while "k" in other_process_cache._tables["credential"]:
            assert time.monotonic() - started < 1, "invalidation not received"
            await asyncio.sleep(0.01)
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
        return time.monotonic() - started

    assert asyncio.run(scenario()) < 1
