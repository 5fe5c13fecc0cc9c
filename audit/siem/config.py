"""The settings of each kind of SIEM sink, validated once, as frozen objects the transports read.

A sink's ``settings`` JSON holds the keys below (unknown keys are refused, so a typo is not silently
ignored); every kind also takes ``batch_size`` (events per delivery, 1-5000, default 500),
``timeout_seconds`` (each network phase, 0.1-120, default 10), and ``retry_initial_seconds`` /
``retry_max_seconds`` (the backoff after a failure doubles from the first up to the second, with
jitter; defaults 1 and 300).

- **webhook**: ``url`` (``https://``), optional ``ca_file`` (PEM bundle that verifies the receiver,
  e.g. a private CA; default: the system's). Needs a secret (16+ characters) for the signature.
- **syslog**: ``host``, ``port`` (default 6514 with TLS, else 601), ``tls`` (default true), optional
  ``ca_file``, ``facility`` (0-23, default 13 "log audit"), ``app_name`` (default ``mcp-gateway``).
- **file**: ``path``, a relative name inside ``GATEWAY_SIEM_FILE_DIR`` (no ``..``), ``fsync``
  (``batch``: fsync after each batch, the default; ``never``: leave it to the OS), ``max_bytes``
  (rotate past this size, 0 for never, the default) and ``backups`` (rotated files kept, default 5).
"""

from __future__ import annotations

import os
import string
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError

MIN_SECRET_LENGTH = 16
_COMMON = {"batch_size", "timeout_seconds", "retry_initial_seconds", "retry_max_seconds"}
_KEYS = {
    "webhook": _COMMON | {"url", "ca_file"},
    "syslog": _COMMON | {"host", "port", "tls", "ca_file", "facility", "app_name"},
    "file": _COMMON | {"path", "fsync", "max_bytes", "backups"},
}
_APP_NAME_CHARS = frozenset(string.printable[:94])  # RFC 5424 PRINTUSASCII, no space


@dataclass(frozen=True, slots=True)
class Delivery:
    """What every kind shares: batch size, network timeout and the retry backoff."""

    batch_size: int = 500
    timeout_seconds: float = 10.0
    retry_initial_seconds: float = 1.0
    retry_max_seconds: float = 300.0


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    url: str
    ca_file: str
    delivery: Delivery


@dataclass(frozen=True, slots=True)
class SyslogConfig:
    host: str
    port: int
    tls: bool
    ca_file: str
    facility: int
    app_name: str
    delivery: Delivery


@dataclass(frozen=True, slots=True)
class FileConfig:
    path: Path
    fsync: bool
    max_bytes: int
    backups: int
    delivery: Delivery


SinkConfig = WebhookConfig | SyslogConfig | FileConfig


def sink_config(kind: str, settings: Any, *, file_dir: str, has_secret: bool = True) -> SinkConfig:
    """The validated configuration of a sink of ``kind``; ValidationError naming each bad key."""
    if kind not in _KEYS:
        raise ValidationError({"kind": f"unknown sink kind {kind!r} (syslog, webhook or file)"})
    if not isinstance(settings, dict):
        raise ValidationError({"settings": "must be a JSON object"})
    unknown = sorted(set(settings) - _KEYS[kind])
    if unknown:
        raise ValidationError({"settings": f"unknown key(s) for a {kind} sink: {', '.join(unknown)}"})
    reader = _Reader(settings)
    delivery = Delivery(
        batch_size=reader.integer("batch_size", 500, 1, 5000),
        timeout_seconds=reader.number("timeout_seconds", 10.0, 0.1, 120.0),
        retry_initial_seconds=reader.number("retry_initial_seconds", 1.0, 0.05, 3600.0),
        retry_max_seconds=reader.number("retry_max_seconds", 300.0, 0.05, 86_400.0),
    )
    if delivery.retry_max_seconds < delivery.retry_initial_seconds:
        reader.errors.append("retry_max_seconds must be at least retry_initial_seconds")
    config: SinkConfig
    if kind == "webhook":
        config = _webhook(reader, delivery, has_secret)
    elif kind == "syslog":
        config = _syslog(reader, delivery)
    else:
        config = _file(reader, delivery, file_dir)
    if reader.errors:
        raise ValidationError({"settings": reader.errors})
    return config


def _webhook(reader: _Reader, delivery: Delivery, has_secret: bool) -> WebhookConfig:
    url = reader.text("url", "")
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        reader.errors.append("url must be an https:// URL with a host")
    elif parts.username or parts.password:
        reader.errors.append("url must not carry a user name or password (the secret signs instead)")
    if not has_secret:
        reader.errors.append(f"a webhook sink needs a secret of {MIN_SECRET_LENGTH}+ characters")
    return WebhookConfig(url=url, ca_file=reader.ca_file(), delivery=delivery)


def _syslog(reader: _Reader, delivery: Delivery) -> SyslogConfig:
    tls = reader.boolean("tls", True)
    host = reader.text("host", "")
    if not host or any(c.isspace() or c in "/@" for c in host):
        reader.errors.append("host must be a host name or address")
    app_name = reader.text("app_name", "mcp-gateway")
    if not 1 <= len(app_name) <= 48 or not set(app_name) <= _APP_NAME_CHARS:
        reader.errors.append("app_name must be 1-48 printable ASCII characters without spaces")
    return SyslogConfig(
        host=host,
        port=reader.integer("port", 6514 if tls else 601, 1, 65535),
        tls=tls,
        ca_file=reader.ca_file(),
        facility=reader.integer("facility", 13, 0, 23),
        app_name=app_name,
        delivery=delivery,
    )


def _file(reader: _Reader, delivery: Delivery, file_dir: str) -> FileConfig:
    raw = reader.text("path", "")
    relative = PurePosixPath(raw)
    if not raw or relative.is_absolute() or ".." in relative.parts or "\\" in raw or "\x00" in raw:
        reader.errors.append("path must be a relative file name inside GATEWAY_SIEM_FILE_DIR, without '..'")
    fsync = reader.text("fsync", "batch")
    if fsync not in ("batch", "never"):
        reader.errors.append("fsync must be 'batch' or 'never'")
    return FileConfig(
        path=Path(file_dir) / relative,
        fsync=fsync == "batch",
        max_bytes=reader.integer("max_bytes", 0, 0, 2**40),
        backups=reader.integer("backups", 5, 1, 100),
        delivery=delivery,
    )


class _Reader:
    """Typed reads of the settings JSON, collecting one message per bad key."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        self.errors: list[str] = []

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self.settings.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.errors.append(f"{key} must be an integer from {low} to {high}")
            return default
        return value

    def number(self, key: str, default: float, low: float, high: float) -> float:
        value = self.settings.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            self.errors.append(f"{key} must be a number from {low:g} to {high:g}")
            return default
        return float(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self.settings.get(key, default)
        if not isinstance(value, bool):
            self.errors.append(f"{key} must be true or false")
            return default
        return value

    def text(self, key: str, default: str) -> str:
        value = self.settings.get(key, default)
        if not isinstance(value, str) or "\x00" in value:
            self.errors.append(f"{key} must be a string (without NUL characters)")
            return default
        return value.strip()

    def ca_file(self) -> str:
        path = self.text("ca_file", "")
        if path and not os.path.isfile(path):
            self.errors.append(f"ca_file {path!r} is not a readable file")
        return path
