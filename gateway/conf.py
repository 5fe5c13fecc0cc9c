"""The ``GATEWAY`` settings object: defaults, validation, read once at start-up.

Modelled on django-oauth-toolkit's ``oauth2_settings``: one namespaced dict in ``settings.py``,
merged over defaults here and validated once. Every key is also read from the environment as
``GATEWAY_<KEY>`` (``settings.py`` passes the raw strings through, so this module is the one place
that converts and range-checks them). A bad value raises ``ImproperlyConfigured`` naming the
variable; the system check ``gateway.E010`` reports the same at ``manage.py check`` and ``serve``,
so misconfiguration fails at start-up rather than on the first request.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True, slots=True)
class Spec:
    """One setting: its type, default and inclusive range."""

    kind: type
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    doc: str = ""
    allow_empty: bool = False


# The one place each GATEWAY_* setting's default and range is stated (the README's table mirrors it).
SPECS: dict[str, Spec] = {
    "MAX_REQUEST_BODY_BYTES": Spec(int, 1 * MIB, 1, 1024 * MIB, "larger request bodies get 413"),
    "MAX_RESPONSE_BODY_BYTES": Spec(
        int, 32 * MIB, 1 * KIB, 4096 * MIB, "largest upstream JSON body a response step parses (else 502)"
    ),
    "MAX_EVENT_BYTES": Spec(int, 8 * MIB, 1 * KIB, 1024 * MIB, "largest upstream event-stream event"),
    "UPSTREAM_CONNECT_TIMEOUT": Spec(float, 5.0, 0.01, 600.0, "seconds to connect to an upstream"),
    "UPSTREAM_DEADLINE_SECONDS": Spec(
        float, 300.0, 0.1, 86_400.0, "total seconds an upstream call may take (not the session stream)"
    ),
    "UPSTREAM_MAX_CONNECTIONS": Spec(int, 200, 1, 100_000, "pooled upstream connections per process"),
    "POLICY_POLL_SECONDS": Spec(float, 1.0, 0.05, 3600.0, "how often a process checks the config version"),
    "POLICY_CACHE_MAX_ENTRIES": Spec(int, 10_000, 10, 10_000_000, "compiled entries kept per process"),
    "LAST_USED_FLUSH_SECONDS": Spec(float, 30.0, 0.1, 86_400.0, "how often last-used times are saved"),
    "AUDIT_BATCH_SIZE": Spec(int, 500, 1, 100_000, "audit events per database insert"),
    "AUDIT_FLUSH_SECONDS": Spec(float, 0.1, 0.001, 60.0, "how long the audit writer lingers to fill a batch"),
    "AUDIT_WAL_DIR": Spec(str, "var/audit-wal", doc="directory of the audit write-ahead files"),
    "AUDIT_FSYNC_SECONDS": Spec(float, 1.0, 0.01, 60.0, "group fsync interval of the audit write-ahead file"),
    "AUDIT_LAG_WARN_EVENTS": Spec(
        int, 10_000, 1, 100_000_000, "audit events not yet in the database before a warning is logged"
    ),
    "AUDIT_SEAL_MAX_EVENTS": Spec(int, 10_000, 1, 1_000_000, "most audit events one seal covers"),
    "UPSTREAM_ALLOW": Spec(
        str,
        "",
        doc="CIDRs and host globs (comma-separated) upstreams may be at beyond public addresses",
        allow_empty=True,
    ),
    "REDIS_TIMEOUT_SECONDS": Spec(
        float, 1.0, 0.01, 60.0, "seconds of Redis time (not event-loop lag) before Redis counts as down"
    ),
    "JWKS_TIMEOUT_SECONDS": Spec(float, 3.0, 0.1, 60.0, "total seconds a JWKS fetch may take"),
    "JWKS_MAX_BYTES": Spec(int, 64 * KIB, 1 * KIB, 10 * MIB, "largest JWKS document accepted"),
    "JWKS_CACHE_SECONDS": Spec(float, 300.0, 1.0, 86_400.0, "how long fetched JWKS keys are used"),
    "JWKS_REFETCH_SECONDS": Spec(
        float, 10.0, 0.1, 3600.0, "least seconds between two fetches of one JWKS URL (unknown kid)"
    ),
    "JWT_CACHE_MAX_ENTRIES": Spec(int, 10_000, 10, 10_000_000, "verified JWTs remembered per process"),
    "METRICS_TOKEN": Spec(
        str, "", doc="bearer token a scrape of /metrics presents (16+ characters)", allow_empty=True
    ),
    "METRICS_ALLOW": Spec(
        str, "", doc="CIDRs (comma-separated) that may scrape /metrics without the token", allow_empty=True
    ),
    "AUTH_FAILURES_PER_MINUTE": Spec(
        int, 30, 0, 1_000_000, "failed authentications per client address and minute before 429 (0: off)"
    ),
    "SIEM_POLL_SECONDS": Spec(float, 1.0, 0.05, 3600.0, "how often new audit events are sent to SIEM sinks"),
    "SIEM_FILE_DIR": Spec(str, "var/siem", doc="directory the JSON Lines files of file SIEM sinks are in"),
    "OAUTH_ACCESS_TOKEN_SECONDS": Spec(int, 600, 30, 86_400, "lifetime of an OAuth access token"),
    "OAUTH_REFRESH_TOKEN_SECONDS": Spec(
        int, 2_592_000, 60, 31_536_000, "lifetime of an OAuth refresh token (rotated on each use)"
    ),
    "OAUTH_REGISTRATIONS_PER_HOUR": Spec(
        int, 20, 0, 1_000_000, "OAuth client registrations per client address and hour before 429 (0: off)"
    ),
    "OAUTH_UNCONSENTED_CLIENT_HOURS": Spec(
        int, 24, 1, 8760, "hours a registered OAuth client no admin consented to is kept"
    ),
    "EXPORT_DIR": Spec(str, "var/exports", doc="directory the admin's audit exports are written to"),
}

METRICS_TOKEN_MIN_LENGTH = 16

DEFAULTS: dict[str, Any] = {name: spec.default for name, spec in SPECS.items()}


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    """Validated gateway settings; build with :func:`gateway_settings`."""

    max_request_body_bytes: int
    max_response_body_bytes: int
    max_event_bytes: int
    upstream_connect_timeout: float
    upstream_deadline_seconds: float
    upstream_max_connections: int
    policy_poll_seconds: float
    policy_cache_max_entries: int
    last_used_flush_seconds: float
    audit_batch_size: int
    audit_flush_seconds: float
    audit_wal_dir: str
    audit_fsync_seconds: float
    audit_lag_warn_events: int
    audit_seal_max_events: int
    redis_timeout_seconds: float
    upstream_allow: str
    jwks_timeout_seconds: float
    jwks_max_bytes: int
    jwks_cache_seconds: float
    jwks_refetch_seconds: float
    jwt_cache_max_entries: int
    metrics_token: str = field(repr=False)
    metrics_allow: str
    auth_failures_per_minute: int
    siem_poll_seconds: float
    siem_file_dir: str
    oauth_access_token_seconds: int
    oauth_refresh_token_seconds: int
    oauth_registrations_per_hour: int
    oauth_unconsented_client_hours: int
    export_dir: str
    redis_url: str
    encryption_keys: tuple[str, ...]


def convert(name: str, value: Any) -> Any:
    """``value`` converted to the type of setting ``name`` and checked against its range."""
    spec = SPECS[name]
    variable = f"GATEWAY_{name}"
    try:
        converted = spec.kind(value)
    except (TypeError, ValueError):
        raise ImproperlyConfigured(f"{variable} must be a {spec.kind.__name__}, got {value!r}") from None
    if spec.kind is str:
        if not converted.strip() and not spec.allow_empty:
            raise ImproperlyConfigured(f"{variable} must not be empty")
        if name == "UPSTREAM_ALLOW":
            _check_upstream_allow(variable, converted)
        elif name == "METRICS_TOKEN":
            _check_metrics_token(variable, converted)
        elif name == "METRICS_ALLOW":
            _check_networks(variable, converted)
        return converted
    if converted != converted or converted in (float("inf"), float("-inf")):  # NaN, infinities
        raise ImproperlyConfigured(f"{variable} must be a finite number, got {value!r}")
    if spec.minimum is not None and converted < spec.minimum:
        raise ImproperlyConfigured(f"{variable} must be at least {spec.minimum:g}, got {value!r}")
    if spec.maximum is not None and converted > spec.maximum:
        raise ImproperlyConfigured(f"{variable} must be at most {spec.maximum:g}, got {value!r}")
    return converted


def _check_upstream_allow(variable: str, value: str) -> None:
    from gateway.egress import parse_allow

    try:
        parse_allow(value)
    except ValueError as error:
        raise ImproperlyConfigured(f"{variable}: {error}") from None


def _check_metrics_token(variable: str, value: str) -> None:
    """Never quotes the value: it is a secret."""
    if value and (len(value) < METRICS_TOKEN_MIN_LENGTH or any(c.isspace() for c in value)):
        raise ImproperlyConfigured(
            f"{variable} must be {METRICS_TOKEN_MIN_LENGTH} or more characters without spaces (or empty)"
        )


def _check_networks(variable: str, value: str) -> None:
    for part in filter(None, (p.strip() for p in value.split(","))):
        try:
            ipaddress.ip_network(part, strict=False)
        except ValueError:
            raise ImproperlyConfigured(f"{variable}: {part!r} is not a network (CIDR) or address") from None


def build_gateway_settings(user: dict[str, Any], *, redis_url: str, keys: list[str]) -> GatewaySettings:
    """Merge ``user`` over :data:`DEFAULTS` and validate every value."""
    unknown = set(user) - set(SPECS)
    if unknown:
        raise ImproperlyConfigured(f"Unknown GATEWAY setting(s): {', '.join(sorted(unknown))}")
    merged = {**DEFAULTS, **user}
    values = {name.lower(): convert(name, merged[name]) for name in SPECS}
    return GatewaySettings(
        **values, redis_url=redis_url, encryption_keys=tuple(k.strip() for k in keys if k.strip())
    )


@cache
def gateway_settings() -> GatewaySettings:
    """The process-wide settings object, built once."""
    return build_gateway_settings(
        getattr(settings, "GATEWAY", {}),
        redis_url=getattr(settings, "REDIS_URL", ""),
        keys=list(getattr(settings, "GATEWAY_ENCRYPTION_KEYS", [])),
    )
