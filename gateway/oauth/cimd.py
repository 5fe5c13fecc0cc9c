"""Fetching a client ID metadata document: the client_id is an HTTPS URL the client controls, so the
fetch is an SSRF risk and is held tighter than an upstream.

- HTTPS only, at every redirect (at most ``MAX_REDIRECTS``);
- only public addresses: loopback, private, link-local, metadata and other special addresses are
  refused whatever ``GATEWAY_UPSTREAM_ALLOW`` says (gateway/egress.py's rules with nothing allowed);
- the connection goes to the address that was judged (the host name is used for SNI, the
  certificate and the Host header), so DNS cannot rebind it to another address in between
  (``EgressPolicy.pinned``, shared with the JWKS and webhook fetches);
- the document is at most ``CIMD_MAX_DOCUMENT_SIZE`` bytes, read within ``CIMD_FETCH_TIMEOUT_SECONDS``
  in all.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx2
from oauth2_provider.cimd import CIMDError
from oauth2_provider.settings import oauth2_settings

from gateway.egress import EgressPolicy, EgressRefused, PinnedRequest

MAX_REDIRECTS = 3
MIN_MAX_AGE, MAX_MAX_AGE = 300, 86_400
CIMD_POLICY = EgressPolicy()  # nothing allowed beyond public addresses


def pinned_request(url: str) -> PinnedRequest:
    """Where to fetch ``url`` from: a public address its host resolves to, judged once and connected
    to (gateway/egress.py ``EgressPolicy.pinned``); CIMDError when the URL or its host is refused."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise CIMDError("a client metadata document must be fetched over https")
    if parts.username or parts.password or parts.fragment:
        raise CIMDError("a client metadata URL must not carry a user or a fragment")
    try:
        return CIMD_POLICY.pinned(url)
    except (EgressRefused, ValueError) as exc:  # ValueError: an invalid port
        raise CIMDError(f"client metadata URL refused: {exc}") from None


class EgressMetadataFetcher:
    """django-oauth-toolkit's ``CIMD_METADATA_FETCHER``: ``fetch(client_id)`` returns the document and
    how many seconds it may be cached, or raises CIMDError (the client is then unknown)."""

    def fetch(self, client_id: str) -> tuple[dict[str, Any], int]:
        deadline = time.monotonic() + float(oauth2_settings.CIMD_FETCH_TIMEOUT_SECONDS)
        url = client_id
        with httpx2.Client(follow_redirects=False, trust_env=False) as client:
            for _ in range(MAX_REDIRECTS + 1):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise CIMDError("client metadata document not fetched in time")
                fetched = self._get(client, url, remaining)
                if not isinstance(fetched, str):
                    return fetched
                url = urljoin(url, fetched)
        raise CIMDError(f"more than {MAX_REDIRECTS} redirects")

    def _get(self, client: httpx2.Client, url: str, timeout: float) -> str | tuple[dict[str, Any], int]:
        """Fetch ``url`` pinned to its judged address: the redirect location, or the document."""
        pinned = pinned_request(url)
        headers = {"host": pinned.host_header, "accept": "application/json"}
        try:
            with client.stream(
                "GET", pinned.url, headers=headers, timeout=timeout, extensions=pinned.extensions
            ) as response:
                if response.is_redirect and "location" in response.headers:
                    return str(response.headers["location"])
                return self._read(response)
        except httpx2.HTTPError as exc:
            raise CIMDError(f"client metadata document not fetched: {type(exc).__name__}") from None

    def _read(self, response: httpx2.Response) -> tuple[dict[str, Any], int]:
        if response.status_code != 200:
            raise CIMDError(f"client metadata document answered HTTP {response.status_code}")
        media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != "application/json" and not media_type.endswith("+json"):
            raise CIMDError("client metadata document is not JSON")
        limit = int(oauth2_settings.CIMD_MAX_DOCUMENT_SIZE)
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > limit:
                raise CIMDError(f"client metadata document larger than {limit} bytes")
        try:
            document = json.loads(body)
        except ValueError:
            raise CIMDError("client metadata document is not valid JSON") from None
        if not isinstance(document, dict):
            raise CIMDError("client metadata document is not a JSON object")
        return document, max_age(response.headers.get("cache-control", ""))


def max_age(cache_control: str) -> int:
    """How long a document may be kept: its Cache-Control max-age, within 5 minutes and a day."""
    match = re.search(r"max-age=(\d+)", cache_control)
    seconds = int(match[1]) if match else MIN_MAX_AGE
    return max(MIN_MAX_AGE, min(MAX_MAX_AGE, seconds))
