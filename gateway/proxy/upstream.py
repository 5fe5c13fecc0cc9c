"""The one pooled upstream HTTP client and the header rules of the proxy.

Headers cross the gateway only by allowlist, in both directions: the agent's ``Authorization`` and
``X-API-Key`` are never forwarded, hop-by-hop headers never pass, and the target's own credential
is injected last so nothing an agent sends can replace it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import httpx2

from gateway.conf import GatewaySettings

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


def create_upstream_client(conf: GatewaySettings) -> httpx2.AsyncClient:
    """The process's pooled client: keep-alive connections, no redirects, no environment proxies."""
    return httpx2.AsyncClient(
        limits=httpx2.Limits(
            max_connections=conf.upstream_max_connections,
            max_keepalive_connections=conf.upstream_max_connections,
        ),
        timeout=httpx2.Timeout(30.0, connect=conf.upstream_connect_timeout),
        follow_redirects=False,
        trust_env=False,
    )


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


def agent_response_headers(upstream_headers: httpx2.Headers) -> dict[str, str]:
    """The allowlisted upstream response headers returned to the agent."""
    return {name: value for name, value in upstream_headers.items() if name in RESPONSE_HEADER_ALLOWLIST}


def upstream_url(base: str, subpath: str, query: str) -> str:
    """The upstream URL for a proxy sub-path: ``/mcp/<slug>/x`` goes to ``<base>/x``."""
    url = base if subpath in ("", "/") else base.rstrip("/") + subpath
    return f"{url}?{query}" if query else url
