"""System checks: configuration errors stop the gateway at start-up, naming the variable."""

from __future__ import annotations

from typing import Any

from cryptography.fernet import Fernet
from django.conf import settings
from django.core.checks import Error, Tags, Warning, register


@register(Tags.security, deploy=False)
def check_encryption_keys(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """Refuse to run without valid GATEWAY_ENCRYPTION_KEYS."""
    keys = getattr(settings, "GATEWAY_ENCRYPTION_KEYS", [])
    if not keys:
        return [
            Error(
                "GATEWAY_ENCRYPTION_KEYS is not set.",
                hint="Set GATEWAY_ENCRYPTION_KEYS to one or more comma-separated Fernet keys (make one with: "
                "python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())').",
                id="gateway.E001",
            )
        ]
    errors = []
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key.encode())
        except ValueError:
            errors.append(
                Error(
                    f"GATEWAY_ENCRYPTION_KEYS entry #{position} is not a valid Fernet key.",
                    hint="A Fernet key is 32 url-safe base64-encoded bytes.",
                    id="gateway.E002",
                )
            )
    return errors


@register(Tags.security, deploy=False)
def check_audit_signing_keys(app_configs: Any = None, **kwargs: Any) -> list[Error | Warning]:
    """Every GATEWAY_AUDIT_SIGNING_KEYS entry is an Ed25519 key; warn when there is none (no seals)."""
    from audit.signing import parse_signing_key

    keys = [key for key in getattr(settings, "GATEWAY_AUDIT_SIGNING_KEYS", []) if key.strip()]
    if not keys:
        return [
            Warning(
                "GATEWAY_AUDIT_SIGNING_KEYS is not set: audit events are not sealed.",
                hint="Set it to one or more comma-separated Ed25519 keys (make one with: python -c "
                "'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())').",
                id="gateway.W002",
            )
        ]
    errors: list[Error | Warning] = []
    for position, key in enumerate(keys, start=1):
        try:
            parse_signing_key(key)
        except ValueError:
            errors.append(
                Error(
                    f"GATEWAY_AUDIT_SIGNING_KEYS entry #{position} is not an Ed25519 key.",
                    hint="A key is 32 random bytes in url-safe base64.",
                    id="gateway.E005",
                )
            )
    return errors


@register(Tags.security, deploy=False)
def check_debug(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    """Warn loudly when DEBUG is on."""
    if settings.DEBUG:
        return [Warning("DEBUG is on: never run production this way.", id="gateway.W001")]
    return []


@register(Tags.security, deploy=False)
def check_allowed_hosts(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """Without DEBUG an empty ALLOWED_HOSTS refuses every request: say so at start-up."""
    if not settings.DEBUG and not settings.ALLOWED_HOSTS:
        return [
            Error(
                "ALLOWED_HOSTS is empty.",
                hint="Set ALLOWED_HOSTS to the gateway's host names.",
                id="gateway.E003",
            )
        ]
    return []


def configured_secret_key() -> str:
    """SECRET_KEY as set, or "" when unset: Django raises ImproperlyConfigured on reading an empty one."""
    from django.core.exceptions import ImproperlyConfigured

    try:
        return str(settings.SECRET_KEY or "")
    except ImproperlyConfigured:
        return ""


@register(Tags.security, deploy=False)
def check_secret_key(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """Without DEBUG the gateway needs SECRET_KEY: it keys sessions, CSRF and the session binding."""
    if not settings.DEBUG and len(configured_secret_key()) < 32:
        return [
            Error(
                "SECRET_KEY is not set (or shorter than 32 characters).",
                hint="Set SECRET_KEY to a long random value, e.g. the output of: python -c "
                "'import secrets; print(secrets.token_urlsafe(50))'.",
                id="gateway.E004",
            )
        ]
    return []


@register(deploy=False)
def check_gateway_settings(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """Every GATEWAY_* value converts to its type and lies in its range (gateway/conf.py's SPECS)."""
    from django.core.exceptions import ImproperlyConfigured

    from gateway.conf import build_gateway_settings

    try:
        build_gateway_settings(
            getattr(settings, "GATEWAY", {}),
            redis_url=getattr(settings, "REDIS_URL", ""),
            keys=list(getattr(settings, "GATEWAY_ENCRYPTION_KEYS", [])),
        )
    except ImproperlyConfigured as exc:
        return [Error(str(exc), hint="See the configuration table in README.md.", id="gateway.E010")]
    return []


# The checks whose failure means a proxied call cannot be served; /readyz runs them on each probe
# (cheap: no I/O). Their messages name a variable or a key's position, never a value that is secret.
SERVING_CHECKS = (check_secret_key, check_encryption_keys, check_allowed_hosts, check_gateway_settings)


def configuration_problems() -> list[str]:
    """``"<check id>: <message>"`` for each configuration error that stops the gateway serving calls."""
    return [f"{error.id}: {error.msg}" for check in SERVING_CHECKS for error in check() if error.is_serious()]


SAMESITE_VALUES = ("Strict", "Lax", "None")


@register(Tags.security, deploy=False)
def check_https_settings(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """The cookie and HTTPS settings read from the environment have values Django can use."""
    problems = [
        f"{name} must be one of {', '.join(SAMESITE_VALUES)}, got {getattr(settings, name)!r}."
        for name in ("SESSION_COOKIE_SAMESITE", "CSRF_COOKIE_SAMESITE")
        if getattr(settings, name) not in SAMESITE_VALUES
    ]
    header = settings.SECURE_PROXY_SSL_HEADER
    if header is not None and not (
        isinstance(header, tuple) and header[0].startswith("HTTP_") and all(header)
    ):
        problems.append(
            f"SECURE_PROXY_SSL_HEADER must look like HTTP_X_FORWARDED_PROTO,https, got {header!r}."
        )
    if settings.SECURE_HSTS_SECONDS < 0:
        problems.append(f"SECURE_HSTS_SECONDS must be 0 or more, got {settings.SECURE_HSTS_SECONDS}.")
    return [
        Error(problem, hint="See the configuration table in README.md.", id="gateway.E011")
        for problem in problems
    ]


@register(deploy=False)
def check_export_dir(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """GATEWAY_EXPORT_DIR, where the admin's audit exports are written, is a directory if it exists (it is
    created on the first export otherwise)."""
    from pathlib import Path

    from gateway.conf import SPECS

    path = Path(getattr(settings, "GATEWAY", {}).get("EXPORT_DIR", SPECS["EXPORT_DIR"].default))
    if path.exists() and not path.is_dir():
        return [
            Error(
                "GATEWAY_EXPORT_DIR is not a directory.",
                hint="Point it at a directory the gateway can write to.",
                id="gateway.E020",
            )
        ]
    return []
