"""The ``GATEWAY`` settings object: defaults, validation, read once at start-up.

Modelled on django-oauth-toolkit's ``oauth2_settings``: one namespaced dict in ``settings.py``,
merged over defaults here and validated once; a bad value raises ``ImproperlyConfigured`` naming
the setting, so misconfiguration fails at start-up rather than on the first request.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEFAULTS: dict[str, Any] = {
    "MAX_REQUEST_BODY_BYTES": 1024 * 1024,
    "UPSTREAM_CONNECT_TIMEOUT": 5.0,
    "UPSTREAM_MAX_CONNECTIONS": 200,
    "POLICY_POLL_SECONDS": 1.0,
    "POLICY_CACHE_MAX_ENTRIES": 10_000,
    "LAST_USED_FLUSH_SECONDS": 30.0,
    "AUDIT_BATCH_SIZE": 200,
    "AUDIT_FLUSH_SECONDS": 0.1,
    "AUDIT_SPOOL_DIR": "var/audit-spool",
    "REDIS_TIMEOUT_SECONDS": 0.25,
}


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    """Validated gateway settings; build with :func:`gateway_settings`."""

    max_request_body_bytes: int
    upstream_connect_timeout: float
    upstream_max_connections: int
    policy_poll_seconds: float
    policy_cache_max_entries: int
    last_used_flush_seconds: float
    audit_batch_size: int
    audit_flush_seconds: float
    audit_spool_dir: str
    redis_timeout_seconds: float
    redis_url: str
    encryption_keys: tuple[str, ...]


def _positive(name: str, value: Any, kind: type) -> Any:
    try:
        converted = kind(value)
    except (TypeError, ValueError):
        raise ImproperlyConfigured(f"GATEWAY[{name!r}] must be a {kind.__name__}, got {value!r}") from None
    if converted <= 0:
        raise ImproperlyConfigured(f"GATEWAY[{name!r}] must be positive, got {value!r}")
    return converted


def build_gateway_settings(user: dict[str, Any], *, redis_url: str, keys: list[str]) -> GatewaySettings:
    """Merge ``user`` over :data:`DEFAULTS` and validate every value."""
    unknown = set(user) - set(DEFAULTS)
    if unknown:
        raise ImproperlyConfigured(f"Unknown GATEWAY setting(s): {', '.join(sorted(unknown))}")
    merged = {**DEFAULTS, **user}
    return GatewaySettings(
        max_request_body_bytes=_positive("MAX_REQUEST_BODY_BYTES", merged["MAX_REQUEST_BODY_BYTES"], int),
        upstream_connect_timeout=_positive(
            "UPSTREAM_CONNECT_TIMEOUT", merged["UPSTREAM_CONNECT_TIMEOUT"], float
        ),
        upstream_max_connections=_positive(
            "UPSTREAM_MAX_CONNECTIONS", merged["UPSTREAM_MAX_CONNECTIONS"], int
        ),
        policy_poll_seconds=_positive("POLICY_POLL_SECONDS", merged["POLICY_POLL_SECONDS"], float),
        policy_cache_max_entries=_positive(
            "POLICY_CACHE_MAX_ENTRIES", merged["POLICY_CACHE_MAX_ENTRIES"], int
        ),
        last_used_flush_seconds=_positive(
            "LAST_USED_FLUSH_SECONDS", merged["LAST_USED_FLUSH_SECONDS"], float
        ),
        audit_batch_size=_positive("AUDIT_BATCH_SIZE", merged["AUDIT_BATCH_SIZE"], int),
        audit_flush_seconds=_positive("AUDIT_FLUSH_SECONDS", merged["AUDIT_FLUSH_SECONDS"], float),
        audit_spool_dir=str(merged["AUDIT_SPOOL_DIR"]),
        redis_timeout_seconds=_positive("REDIS_TIMEOUT_SECONDS", merged["REDIS_TIMEOUT_SECONDS"], float),
        redis_url=redis_url,
        encryption_keys=tuple(k.strip() for k in keys if k.strip()),
    )


@cache
def gateway_settings() -> GatewaySettings:
    """The process-wide settings object, built once."""
    return build_gateway_settings(
        getattr(settings, "GATEWAY", {}),
        redis_url=getattr(settings, "REDIS_URL", ""),
        keys=list(getattr(settings, "GATEWAY_ENCRYPTION_KEYS", [])),
    )
