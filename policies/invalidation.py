"""Tell every gateway process that configuration changed.

Every write to a model that feeds a compiled policy bumps :class:`PolicyVersion` once the
transaction commits, empties this process's cache at once and, when Redis is configured, publishes
on :func:`channel` so the other processes empty theirs within milliseconds. Without Redis, the
other processes see the new version at their next poll (at most ``POLICY_POLL_SECONDS`` later).

Signals are used here, and only here, because invalidation must follow every write path (admin,
services, shell, fixtures): missing one would leave a revoked credential working.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models import F
from django.db.models.signals import m2m_changed, post_delete, post_save

logger = logging.getLogger(__name__)

CHANNEL_PREFIX = "gateway:policy-invalidate"


def channel() -> str:
    """The pub/sub channel of this deployment: Redis pub/sub is server-wide, not per database, so the
    channel names the database (``REDIS_URL``'s ``/N``); gateways sharing a Redis server on other
    databases (other deployments, parallel test runs) never empty each other's caches."""
    from urllib.parse import urlsplit

    from django.conf import settings

    database = urlsplit(getattr(settings, "REDIS_URL", "") or "").path.strip("/") or "0"
    return f"{CHANNEL_PREFIX}:{database}"


def bump_policy_version() -> None:
    """Advance the configuration version, invalidate locally and notify other processes."""
    from policies.cache import policy_cache
    from policies.models import PolicyVersion

    updated = PolicyVersion.objects.filter(pk=1).update(version=F("version") + 1)
    if not updated:
        PolicyVersion.objects.get_or_create(pk=1, defaults={"version": 1})
    policy_cache.invalidate()
    publish_invalidation()


def publish_invalidation() -> None:
    """Tell the other processes (through Redis, when configured) to empty their caches."""
    from gateway.redis_client import sync_redis

    client = sync_redis()
    if client is None:
        return
    try:
        client.publish(channel(), "1")
    except Exception as exc:  # Redis down: the database version poll still carries the change.
        logger.warning("policy invalidation not published to Redis: %s", type(exc).__name__)


def _on_change(sender: Any, **kwargs: Any) -> None:
    if kwargs.get("raw"):
        return
    transaction.on_commit(bump_policy_version)


def _on_update_or_delete(sender: Any, **kwargs: Any) -> None:
    if kwargs.get("created"):
        return
    _on_change(sender, **kwargs)


def invalidate_on_change(model: Any, *, on_create: bool = True) -> None:
    """Empty the caches after every save (or, with ``on_create`` False, every update) and delete of
    ``model``: how another app registers the models its compiled entries are built from."""
    name = f"{model._meta.app_label}.{model.__name__}"
    post_save.connect(
        _on_change if on_create else _on_update_or_delete,
        sender=model,
        dispatch_uid=f"policy-invalidate-save-{name}",
    )
    post_delete.connect(_on_change, sender=model, dispatch_uid=f"policy-invalidate-delete-{name}")


def connect() -> None:
    """Connect the invalidation handlers to every model that feeds a compiled policy."""
    from gateway.models import Credential, Target, Tenant
    from metering.models import Meter
    from policies.models import AllowRule, Filter, PinnedTool, RedactionPolicy

    for model in (Tenant, Target, Credential, AllowRule, Filter, RedactionPolicy, PinnedTool, Meter):
        post_save.connect(_on_change, sender=model, dispatch_uid=f"policy-invalidate-save-{model.__name__}")
        post_delete.connect(
            _on_change, sender=model, dispatch_uid=f"policy-invalidate-delete-{model.__name__}"
        )
    m2m_changed.connect(
        _on_change, sender=Credential.targets.through, dispatch_uid="policy-invalidate-targets"
    )
