"""The one pooled upstream HTTP client, its timeouts and error mapping, and the header rules.

The client is aiohttp's: in this hot path it costs about a third of the CPU of httpx2 per call
(0.47 ms against 1.43 ms measured on loopback; see bench/RESULTS.md), and the proxy makes one
upstream call per proxied call.

Headers cross the gateway only by allowlist, in both directions: the agent's ``Authorization`` and
``X-API-Key`` are never forwarded, hop-by-hop headers never pass, and the target's own credential
is injected last so nothing an agent sends can replace it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urljoin, urlsplit

import aiohttp
import yarl

from gateway.conf import GatewaySettings
from gateway.egress import EgressRefused, PolicyResolver, egress_policy
from gateway.proxy.errors import GatewayError, ResponseTooLarge, UpstreamTimeout, UpstreamUnavailable
from gateway.proxy.paths import encode_subpath

# Request headers an agent may send upstream (lower case).
REQUEST_HEADER_ALLOWLIST = frozenset(
    {
        "accept",
        "content-type",
        "mcp-protocol-version",
        "mcp-method",
        "mcp-name",
        "last-event-id",
        "user-agent",
        "traceparent",
        "tracestate",
    }
)

# Response headers an upstream may send back to the agent (lower case). Mcp-Session-Id is
# handled apart: it is rewritten to bind the session to the credential.
RESPONSE_HEADER_ALLOWLIST = frozenset(
    {
        "content-type",
        "mcp-protocol-version",
        "cache-control",
        "retry-after",
        "last-modified",
        "etag",
        "location",
        "content-location",
    }
)
# Rewritten to the proxy URL, or dropped: an agent never learns an upstream host from them.
_LOCATION_HEADERS = frozenset({"location", "content-location"})
# Printable Latin-1 (tab allowed): what the ASGI server can send on, with no CR, LF or NUL.
_SAFE_HEADER_VALUE = re.compile(r"[\t\x20-\x7e\xa0-\xff]*")
_UNSAFE_LOCATION_PATH = re.compile(r"%2e|%2f|%5c|\\", re.IGNORECASE)

_STREAM_CHUNK = 64 * 1024


def create_upstream_client(conf: GatewaySettings) -> aiohttp.ClientSession:
    """The process's pooled client: keep-alive connections, no redirects, no cookies, no env proxies."""
    # Every new connection's addresses pass the SSRF policy (gateway/egress.py), so DNS answers that
    # changed since the target was saved are judged again; the DNS cache keeps judged answers only.
    connector = aiohttp.TCPConnector(
        limit=conf.upstream_max_connections,
        limit_per_host=0,
        ttl_dns_cache=60,
        resolver=PolicyResolver(egress_policy()),
    )
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=True,
        trust_env=False,
        skip_auto_headers=("User-Agent",),
    )


@dataclass(frozen=True, slots=True)
class UpstreamTimeouts:
    """``connect`` bounds the connection; ``read`` each wait for bytes, unless ``unbounded_read``;
    ``total`` the whole call, from sending the request to the body's last byte (None: no bound).
    """

    connect: float
    read: float
    unbounded_read: bool = False
    total: float | None = None


class UpstreamResponse:
    """An upstream response whose body is read whole or relayed chunk by chunk, never both.

    Every read is bounded by the call's total timeout and the per-read timeout the request was sent
    with (aiohttp's own timers: one per call, none per read); ``deadline`` (event-loop time) tells
    the two apart in the error.
    """

    def __init__(
        self, response: aiohttp.ClientResponse, target_slug: str, deadline: float | None, total: float | None
    ) -> None:
        self._response = response
        self._target_slug = target_slug
        self._deadline = deadline
        self._total = total
        self.status = response.status
        self.headers = {name.lower(): value for name, value in response.headers.items()}

    @property
    def declared_length(self) -> int | None:
        """The body's Content-Length, when the upstream declared one."""
        return self._response.content_length

    async def read_whole(self, limit: int) -> bytes:
        """The whole body (a JSON message is one unit), at most ``limit`` bytes.

        Raises ResponseTooLarge (502) past ``limit`` (a declared length is checked before reading),
        UpstreamTimeout (504) past the deadline or a read timeout, UpstreamUnavailable (502).
        """
        try:
            declared = self._response.content_length
            if declared is not None and declared > limit:
                raise self._too_large(limit)
            chunks: list[bytes] = []
            size = 0
            async for chunk in self._response.content.iter_chunked(_STREAM_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise self._too_large(limit)
                chunks.append(chunk)
            return b"".join(chunks)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise self._failure(exc) from None
        finally:
            self._response.release()

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        """The body as it arrives, in constant memory. Raises UpstreamTimeout past the deadline or a
        read timeout and UpstreamUnavailable when the upstream breaks off: the status is already
        sent, so the caller ends the stream there and records why.
        """
        content = self._response.content
        try:
            while True:
                chunk = await content.read(_STREAM_CHUNK)
                if not chunk:
                    return
                yield chunk
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise self._failure(exc) from None
        finally:
            self._response.release()

    def _too_large(self, limit: int) -> ResponseTooLarge:
        return ResponseTooLarge(
            f"Upstream of target {self._target_slug!r} sent a JSON body larger than "
            f"GATEWAY_MAX_RESPONSE_BODY_BYTES ({limit} bytes)"
        )

    def _failure(self, exc: BaseException) -> GatewayError:
        return _upstream_failure(exc, self._target_slug, self._deadline, self._total, "failed")


def _upstream_failure(
    exc: BaseException, target_slug: str, deadline: float | None, total: float | None, verb: str
) -> GatewayError:
    """The 504 or 502 for an upstream failure, naming the deadline when it was the deadline."""
    refused = getattr(exc, "os_error", None)
    if isinstance(refused, EgressRefused):
        return UpstreamUnavailable(f"Upstream of target {target_slug!r} not reached: {refused}")
    if not isinstance(exc, TimeoutError):
        return UpstreamUnavailable(f"Upstream of target {target_slug!r} {verb} ({type(exc).__name__})")
    if deadline is not None and asyncio.get_running_loop().time() >= deadline:
        return UpstreamTimeout(
            f"Upstream of target {target_slug!r} did not finish within the {total:g} s deadline "
            "(GATEWAY_UPSTREAM_DEADLINE_SECONDS)"
        )
    return UpstreamTimeout(f"Upstream of target {target_slug!r} timed out")


async def send_upstream(
    client: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    headers: dict[str, str],
    body: bytes,
    timeouts: UpstreamTimeouts,
    target_slug: str,
) -> UpstreamResponse:
    """Send the request and return once the status and headers are in. Raises 502 / 504 errors.

    The total timeout starts here and runs until the response's body is read or released.
    """
    total = timeouts.total
    deadline = None if total is None else asyncio.get_running_loop().time() + total
    timeout = aiohttp.ClientTimeout(
        total=total, connect=timeouts.connect, sock_read=None if timeouts.unbounded_read else timeouts.read
    )
    try:
        response = await client.request(
            method,
            yarl.URL(url, encoded=True),  # upstream_url's path is final: no re-quoting or dot removal
            headers=headers,
            data=body or None,
            timeout=timeout,
            allow_redirects=False,
        )
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise _upstream_failure(exc, target_slug, deadline, total, "is unreachable") from None
    return UpstreamResponse(response, target_slug, deadline, total)


def upstream_request_headers(
    agent_headers: Mapping[str, str],
    *,
    injected: Iterable[tuple[str, str]],
    upstream_session_id: str,
    request_id: str,
) -> dict[str, str]:
    """The headers sent upstream: allowlisted agent headers, then the gateway's own."""
    headers = {name: value for name, value in agent_headers.items() if name in REQUEST_HEADER_ALLOWLIST}
    headers["accept-encoding"] = "identity"
    headers["x-request-id"] = request_id
    if upstream_session_id:
        headers["mcp-session-id"] = upstream_session_id
    for name, value in injected:
        headers[name] = value
    return headers


def agent_response_headers(
    upstream_headers: Mapping[str, str], *, target_slug: str, base_url: str, request_url: str
) -> dict[str, str]:
    """The allowlisted upstream response headers returned to the agent.

    A value that is not printable Latin-1 text is dropped. ``Location`` and ``Content-Location``
    never name an upstream host: one inside the target's base URL is rewritten to the proxy URL
    (``/mcp/<slug>/...``), any other is dropped.
    """
    headers: dict[str, str] = {}
    for name, value in upstream_headers.items():
        if name not in RESPONSE_HEADER_ALLOWLIST or not _SAFE_HEADER_VALUE.fullmatch(value):
            continue
        if name in _LOCATION_HEADERS:
            proxied = proxy_location(
                value, target_slug=target_slug, base_url=base_url, request_url=request_url
            )
            if proxied is None:
                continue
            value = proxied
        headers[name] = value
    return headers


def proxy_location(location: str, *, target_slug: str, base_url: str, request_url: str) -> str | None:
    """``location`` (resolved against ``request_url``) as a path under ``/mcp/<slug>/``, or None when it
    points outside the target's base URL or holds a dot segment, encoded dot, slash or backslash.
    """
    resolved = urlsplit(urljoin(request_url, location))
    base = urlsplit(_encoded_base(base_url))  # as the upstream knows it: percent-encoded, IDNA host
    if (resolved.scheme.lower(), resolved.netloc.lower()) != (base.scheme.lower(), base.netloc.lower()):
        return None
    base_path = base.path.rstrip("/")
    if resolved.path != base_path and not resolved.path.startswith(base_path + "/"):
        return None
    rest = resolved.path[len(base_path) :] or "/"
    if _UNSAFE_LOCATION_PATH.search(rest) or any(s in (".", "..") for s in rest.split("/")):
        return None
    proxied = f"/mcp/{target_slug}{rest}"
    if resolved.query:
        proxied += f"?{resolved.query}"
    if resolved.fragment:
        proxied += f"#{resolved.fragment}"
    return proxied


def upstream_url(base: str, subpath: str, query: str) -> str:
    """The upstream URL, already percent-encoded, for a normalised sub-path: ``/mcp/<slug>/x`` goes to
    ``<base>/x``.

    ``subpath`` comes from :mod:`gateway.proxy.paths` (decoded, no dot or empty segment), so the
    URL stays under the base path; it is sent as it is (``encoded=True``), not normalised again.
    The query string goes as the agent sent it (checked to be printable ASCII).
    """
    base = _encoded_base(base)
    url = base if subpath in ("", "/") else base.rstrip("/") + encode_subpath(subpath)
    return f"{url}?{query}" if query else url


@lru_cache(maxsize=1024)
def _encoded_base(base: str) -> str:
    """A target's base URL in encoded form (the admin may have typed non-ASCII characters)."""
    return str(yarl.URL(base))
