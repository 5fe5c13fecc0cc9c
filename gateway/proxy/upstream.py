"""The one pooled upstream HTTP client, its timeouts and error mapping, and the header rules.

The client is aiohttp's: in this hot path it costs about a third of the CPU of httpx2 per call
(0.47 ms against 1.43 ms measured on loopback; see bench/RESULTS.md), and the proxy makes one
upstream call per proxied call.

Headers cross the gateway only by allowlist, in both directions: the agent's ``Authorization`` and
``X-API-Key`` are never forwarded, hop-by-hop headers never pass, and the target's own credential
is injected last so nothing an agent sends can replace it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

import aiohttp
import yarl

from gateway.conf import GatewaySettings
from gateway.proxy.errors import UpstreamTimeout, UpstreamUnavailable
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
    }
)

_STREAM_CHUNK = 64 * 1024


def create_upstream_client(conf: GatewaySettings) -> aiohttp.ClientSession:
    """The process's pooled client: keep-alive connections, no redirects, no cookies, no env proxies."""
    connector = aiohttp.TCPConnector(limit=conf.upstream_max_connections, limit_per_host=0, ttl_dns_cache=60)
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=True,
        trust_env=False,
        skip_auto_headers=("User-Agent",),
    )


@dataclass(frozen=True, slots=True)
class UpstreamTimeouts:
    """``connect`` bounds the connection; ``read`` each wait for bytes, unless ``unbounded_read``."""

    connect: float
    read: float
    unbounded_read: bool = False


class UpstreamResponse:
    """An upstream response whose body is read whole or relayed chunk by chunk, never both."""

    def __init__(self, response: aiohttp.ClientResponse, target_slug: str) -> None:
        self._response = response
        self._target_slug = target_slug
        self.status = response.status
        self.headers = {name.lower(): value for name, value in response.headers.items()}

    async def read_whole(self) -> bytes:
        """The whole body (a JSON message is one unit); a failure mid-body is a 502 / 504."""
        try:
            return await self._response.read()
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise UpstreamTimeout(f"Upstream of target {self._target_slug!r} timed out") from None
        except aiohttp.ClientError as exc:
            message = f"Upstream of target {self._target_slug!r} failed ({type(exc).__name__})"
            raise UpstreamUnavailable(message) from None
        finally:
            self._response.release()

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives. An upstream that breaks off mid-stream ends the relay there."""
        try:
            async for chunk in self._response.content.iter_chunked(_STREAM_CHUNK):
                yield chunk
        except (TimeoutError, aiohttp.ClientError):
            return  # the status is already sent: end the stream; the audit event has the bytes
        finally:
            self._response.release()


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
    """Send the request and return once the status and headers are in. Raises 502 / 504 errors."""
    timeout = aiohttp.ClientTimeout(
        total=None, connect=timeouts.connect, sock_read=None if timeouts.unbounded_read else timeouts.read
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
    except (TimeoutError, aiohttp.ServerTimeoutError):
        raise UpstreamTimeout(f"Upstream of target {target_slug!r} timed out") from None
    except aiohttp.ClientError as exc:
        message = f"Upstream of target {target_slug!r} is unreachable ({type(exc).__name__})"
        raise UpstreamUnavailable(message) from None
    return UpstreamResponse(response, target_slug)


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


def agent_response_headers(upstream_headers: Mapping[str, str]) -> dict[str, str]:
    """The allowlisted upstream response headers returned to the agent."""
    return {name: value for name, value in upstream_headers.items() if name in RESPONSE_HEADER_ALLOWLIST}


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
