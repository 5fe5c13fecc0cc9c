"""How many OAuth clients one address may register: registration is open to anyone (the MCP
authorization spec has clients register themselves), so each one is a row an unauthenticated caller
makes the gateway store. ``GATEWAY_OAUTH_REGISTRATIONS_PER_HOUR`` registrations per client address
(an IPv6 address counts as its /64, as for failed authentications) and clock hour are accepted; more
get 429 until the hour turns. The count lives in Django's ``throttle`` cache: Redis when
``REDIS_URL`` is set (one count for every gateway process), else this process's memory. When the
cache cannot be reached the registration goes on (the limit fails open) and the failure is logged.
Registrations no admin consented to are deleted after ``GATEWAY_OAUTH_UNCONSENTED_CLIENT_HOURS``
(``gateway.oauth.services.oauth_unconsented_clients_prune``)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.core.cache import caches

from gateway.conf import gateway_settings
from gateway.proxy.auth_failures import address_key

logger = logging.getLogger(__name__)
HOUR = 3600


@dataclass(frozen=True, slots=True)
class RegistrationQuota:
    allowed: bool
    retry_after: int  # seconds until the hour turns (0 when allowed)


def registration_quota(client_ip: str) -> RegistrationQuota:
    """Count one registration from ``client_ip`` and say whether it is within the hour's limit."""
    limit = gateway_settings().oauth_registrations_per_hour
    if limit <= 0:
        return RegistrationQuota(True, 0)
    now = time.time()
    key = f"oauth-registrations:{address_key(client_ip)}:{int(now // HOUR)}"
    cache = caches["throttle"]
    try:
        cache.add(key, 0, timeout=HOUR + 60)
        count = cache.incr(key)
    except Exception:
        logger.warning("OAuth registration throttle unavailable; registration not counted", exc_info=True)
        return RegistrationQuota(True, 0)
    if count <= limit:
        return RegistrationQuota(True, 0)
    return RegistrationQuota(False, max(1, HOUR - int(now % HOUR)))
