"""Webhook delivery: one HTTPS POST per batch, JSON, signed with HMAC-SHA256.

Headers: ``Content-Type: application/json``, ``X-Gateway-Timestamp: <unix seconds>`` and
``X-Gateway-Signature: t=<unix seconds>,v1=<hex>``, where the hex is
``HMAC-SHA256(secret, "<unix seconds>." + body)``. A receiver recomputes it over the raw body,
compares in constant time and refuses a timestamp far from its clock (replays). The body is
``{"events": [record, ...]}`` (audit/siem/records.py); a 2xx answer acknowledges the whole batch,
anything else (or no answer within the timeout) means it is sent again later. The URL's host is
judged by the upstream address policy (gateway/egress.py) before each delivery, and the request
sent to the address judged (no DNS rebinding in between); redirects are not
followed and the answer's body is never read.
"""

from __future__ import annotations

import hashlib
import hmac
import time

import httpx2

from audit.siem.config import WebhookConfig
from audit.siem.records import SiemRecord, webhook_body
from audit.siem.transport import DeliveryError, describe, tls_context
from gateway.egress import EgressRefused, egress_policy

USER_AGENT = "mcp-gateway-siem/1"


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Gateway-Signature`` value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def send_webhook(config: WebhookConfig, secret: str, records: list[SiemRecord]) -> None:
    """POST ``records`` as one signed batch; DeliveryError unless the receiver answers 2xx."""
    try:
        pinned = egress_policy().pinned(config.url)
    except EgressRefused as exc:
        raise DeliveryError(f"webhook: {exc}") from None
    body = webhook_body(records)
    timestamp = str(int(time.time()))
    headers = {
        "Host": pinned.host_header,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Gateway-Timestamp": timestamp,
        "X-Gateway-Signature": webhook_signature(secret, timestamp, body),
    }
    timeout = httpx2.Timeout(config.delivery.timeout_seconds)
    verify = tls_context(config.ca_file)
    try:
        with (
            httpx2.Client(verify=verify, timeout=timeout, follow_redirects=False, trust_env=False) as client,
            client.stream(
                "POST", pinned.url, content=body, headers=headers, extensions=pinned.extensions
            ) as response,
        ):
            status = response.status_code
    except httpx2.TimeoutException:
        raise DeliveryError("webhook: timed out") from None
    except (httpx2.HTTPError, OSError) as exc:
        raise DeliveryError(f"webhook: {describe(exc.__cause__ or exc)}") from None
    if not 200 <= status < 300:
        raise DeliveryError(f"webhook answered HTTP {status}")
