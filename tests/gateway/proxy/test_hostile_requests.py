"""Hostile requests never reach the upstream outside the allowed route, and never break the gateway.

Each request is written byte for byte on a raw socket (an HTTP client would normalise the path).
The upstreams record every request they receive, so the test sees what the gateway really sent.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_to_bytes

import pytest

from audit.models import AuditEvent
from gateway.services import target_create
from tests.conftest import issue_credential
from tests.servers import ServerThread
from tests.upstream import answer_lifespan, read_request_body, send_reply


@dataclass
class LoggingUpstream:
    """A tiny ASGI app that records the method, raw path, query and body of every request."""

    seen: list[tuple[str, bytes, bytes, bytes]] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if await answer_lifespan(scope, receive, send):
            return
        body = await read_request_body(receive)
        self.seen.append((scope["method"], scope["raw_path"], scope["query_string"], body))
        reply: dict[str, Any] = {"ok": True}
        if body.startswith(b"{"):
            reply = {"jsonrpc": "2.0", "id": json.loads(body).get("id"), "result": {"content": []}}
        await send_reply(send, json.dumps(reply).encode())


@pytest.fixture(scope="module")
def logging_upstream() -> Iterator[tuple[LoggingUpstream, ServerThread]]:
    app = LoggingUpstream()
    server = ServerThread(app).start()
    yield app, server
    server.stop()


@pytest.fixture
def hostile_setup(gateway, tenant, logging_upstream):
    app, server = logging_upstream
    app.seen.clear()
    web = target_create(tenant=tenant, slug="web", kind="http", upstream_url=f"{server.url}/api")
    mcp = target_create(tenant=tenant, slug="tools", upstream_url=f"{server.url}/mcp-up")
    web_token = issue_credential(tenant, web, "GET /public/**").token
    mcp_token = issue_credential(tenant, mcp, "POST /tools/search", name="mcp-agent").token
    return app, web_token, mcp_token


def raw_request(port: int, request: bytes, timeout: float = 20) -> int | None:
    """Send ``request`` as is; the response status, or None if the server closed without one."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        received = b""
        deadline = time.monotonic() + timeout
        while b"\r\n" not in received and time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    if not received.startswith(b"HTTP/1.1 "):
        return None
    return int(received[9:12])


def http(method: str, target: bytes, token: str, *, headers: bytes = b"", body: bytes = b"") -> bytes:
    head = b"%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAuthorization: Bearer %s\r\n" % (
        method.encode(),
        target,
        token.encode(),
    )
    if body and b"content-length" not in headers.lower():
        head += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
    return head + headers + b"\r\n" + body


def call(name: str = "search", extra: str = "", arguments: str = '{"query": "q"}') -> bytes:
    return (
        f'{{"jsonrpc": "2.0", "id": 7, "method": "tools/call", '
        f'"params": {{"name": "{name}", "arguments": {arguments}}}{extra}}}'
    ).encode()


DOT_FORMS = [
    "%2e%2e",
    "%2E%2E",
    ".%2e",
    "%2e.",
    "..%2f",
    "..%2F",
    "%2f",
    ";/..",
    ".",
    "",
    "..\\",
    "..%5c",
    "%5c..%5c",
    "..",
    "..;",
    "%252e%252e",
    "%c0%ae%c0%ae",
    "%EF%BC%8E%EF%BC%8E",
]

# (method, target, path, extra headers, body): for the plain HTTP target allowed only GET /public/**
# and the MCP target allowed only POST /tools/search.
HOSTILE: list[tuple[str, str, bytes, bytes, bytes]] = [
    *[("GET", "web", f"/mcp/web/public/{form}/admin".encode(), b"", b"") for form in DOT_FORMS],
    *[("GET", "web", f"/mcp/web/public/{form}/{form}/admin".encode(), b"", b"") for form in DOT_FORMS],
    *[("GET", "web", f"/mcp/web/{form}/public/x".encode(), b"", b"") for form in DOT_FORMS],
    *[("GET", "tools", f"/mcp/tools/{form}/{form}/api/users/42".encode(), b"", b"") for form in DOT_FORMS],
    *[("DELETE", "tools", f"/mcp/tools/{form}/api/users/42".encode(), b"", b"") for form in DOT_FORMS],
    *[("POST", "tools", f"/mcp/tools/{form}/api".encode(), b"", call()) for form in DOT_FORMS],
    ("GET", "tools", b"/mcp/tools/api/users/42", b"", b""),
    ("DELETE", "tools", b"/mcp/tools/sessions", b"", b""),
    ("GET", "web", b"/mcp/web/public/../../../../etc/passwd", b"", b""),
    ("GET", "web", b"/mcp/web//public/..//..//admin", b"", b""),
    ("GET", "web", b"/mcp/web/public/a%00b", b"", b""),
    ("GET", "web", b"/mcp/web/public/a%0d%0aX-Injected:%201", b"", b""),
    ("GET", "web", b"/mcp/web/public/a\x01b", b"", b""),
    ("GET", "web", b"/mcp/web/public/caf\xc3\xa9", b"", b""),
    ("GET", "web", b"/mcp/web/public/\xff\xfe", b"", b""),
    ("GET", "web", b"/mcp/web/public/%ff%fe", b"", b""),
    ("GET", "web", b"/mcp/web/public/x?q=\xff", b"", b""),
    ("GET", "web", b"/mcp/web/public/x?q=a\x01b", b"", b""),
    ("GET", "web", b"/mcp/web/public/x?q=%00", b"", b""),
    ("GET", "web", b"/mcp/web/public/x", b"User-Agent: a\x01b\r\n", b""),
    ("GET", "web", b"/mcp/web/public/x", b"User-Agent: a\x00b\r\n", b""),
    ("GET", "web", b"/mcp/web/public/x", b"Accept: \xff\xfe\r\n", b""),
    ("GET", "web", b"/mcp/web/public/x", b"X-Request-ID: a\x7fb\r\n", b""),
    ("GET", "web", b"/mcp/web/public/x", b"X-Big: " + b"a" * 65536 + b"\r\n", b""),
    ("GET", "web", b"/mcp/web/public/x", b"X-Big: " + b"a" * 60000 + b"\r\n", b""),
    ("POST", "tools", b"/mcp/tools/", b"Mcp-Session-Id: caf\xc3\xa9\r\n", call()),
    ("POST", "tools", b"/mcp/tools/", b"Mcp-Method: tools/call\r\nMcp-Name: search\x01\r\n", call()),
    *[
        ("POST", "tools", b"/mcp/tools/", f"Content-Length: {length}\r\n".encode(), call())
        for length in ("9223372036854775808", "18446744073709551615", "-1", "abc", "1e3", "0x10")
    ],
    ("POST", "tools", b"/mcp/tools/", b"", call(name="search\\u0000")),
    ("POST", "tools", b"/mcp/tools/", b"", call(name="delete_all\\u0000")),
    ("POST", "tools", b"/mcp/tools/", b"", call(name="search\x00")),
    ("POST", "tools", b"/mcp/tools/", b"", call().replace(b"search", b"search\xff")),
    ("POST", "tools", b"/mcp/tools/", b"", call(extra=', "x": "\\ud800"')),
    ("POST", "tools", b"/mcp/tools/", b"", call(extra=', "x": NaN')),
    ("POST", "tools", b"/mcp/tools/", b"", call(extra=', "x": 18446744073709551616')),
    ("POST", "tools", b"/mcp/tools/", b"", call(extra=', "params": {"name": "delete_all"}')),
    ("POST", "tools", b"/mcp/tools/", b"", call(extra=', "Params": {"name": "delete_all"}')),
    ("POST", "tools", b"/mcp/tools/", b"", call(extra=', "param\\u017f": {"name": "delete_all"}')),
    ("POST", "tools", b"/mcp/tools/", b"", call(extra=', "Method": "ping"')),
    ("POST", "tools", b"/mcp/tools/", b"", call(arguments='{}, "name": "delete_all"')),
    ("POST", "tools", b"/mcp/tools/", b"", call(arguments='{}, "Name": "delete_all"')),
    (
        "POST",
        "tools",
        b"/mcp/tools/",
        b"",
        b'{"jsonrpc": "2.0", "id": 7, "method": "ping", "Method": "tools/call", "params": {"name": "delete_all"}}',
    ),
    (
        "POST",
        "tools",
        b"/mcp/tools/",
        b"",
        b'{"jsonrpc": "2.0", "id": 7, "method": "tools/call", "method": "ping", "params": {"name": "delete_all"}}',
    ),
    ("POST", "tools", b"/mcp/tools/", b"", b"[" * 5000 + b"]" * 5000),
    (
        "POST",
        "tools",
        b"/mcp/tools/",
        b"",
        b'{"jsonrpc": "2.0", "id": 7, "method": "ping", "x": ' + b"[" * 300 + b"]" * 300 + b"}",
    ),
]


def _decoded_segments(raw_path: bytes) -> list[bytes]:
    return [unquote_to_bytes(segment) for segment in raw_path.split(b"/")]


def _outside_the_allowed_routes(seen: tuple[str, bytes, bytes, bytes]) -> bool:
    method, raw_path, _, body = seen
    if raw_path.startswith(b"/mcp-up"):  # the MCP target: its own URL only, and never the denied tool
        return raw_path != b"/mcp-up" or b"delete_all" in body
    segments = _decoded_segments(raw_path)
    return (
        method != "GET"
        or not raw_path.startswith(b"/api/public/")
        or any(segment in (b".", b"..") or b"/" in segment or b"\\" in segment for segment in segments)
        or any(b"%" in segment or b";" in segment for segment in segments)
    )


def test_hostile_requests_get_no_500_and_never_reach_the_upstream_outside_the_allowed_route(
    gateway, hostile_setup
):
    # given
    upstream, web_token, mcp_token = hostile_setup
    port = gateway.server.port
    # when
    statuses = []
    for method, target, path, headers, body in HOSTILE:
        token = web_token if target == "web" else mcp_token
        statuses.append(
            (
                path[:60],
                headers[:40],
                body[:60],
                raw_request(port, http(method, path, token, headers=headers, body=body)),
            )
        )
    # then
    assert [entry for entry in statuses if entry[3] is not None and entry[3] >= 500] == []
    assert [seen for seen in upstream.seen if _outside_the_allowed_routes(seen)] == []


def test_an_allowed_call_still_reaches_the_upstream_at_the_normalised_path(gateway, hostile_setup):
    upstream, web_token, mcp_token = hostile_setup
    port = gateway.server.port
    statuses = [
        raw_request(port, http("GET", b"/mcp/web/public/a/./b/../c%20d?x=%2F..", web_token)),
        raw_request(port, http("GET", b"/mcp/web/public//docs/", web_token)),
        raw_request(
            port, http("POST", b"/mcp/tools/", mcp_token, body=call(arguments='{"query": "a\\u0000b"}'))
        ),
    ]
    assert statuses == [200, 200, 200]
    assert [(method, path, query) for method, path, query, _ in upstream.seen] == [
        ("GET", b"/api/public/a/c%20d", b"x=%2F.."),
        ("GET", b"/api/public/docs/", b""),
        ("POST", b"/mcp-up", b""),
    ]
    assert json.loads(upstream.seen[2][3])["params"]["arguments"] == {"query": "a\x00b"}


def test_after_hostile_requests_a_normal_call_is_answered_and_audited(gateway, hostile_setup):
    # given every hostile request has been made
    _, web_token, mcp_token = hostile_setup
    port = gateway.server.port
    for method, target, path, headers, body in HOSTILE:
        token = web_token if target == "web" else mcp_token
        raw_request(port, http(method, path, token, headers=headers, body=body))
    # when
    request = http(
        "POST", b"/mcp/tools/", mcp_token, headers=b"X-Request-ID: after-the-storm\r\n", body=call()
    )
    status = raw_request(port, request)
    gateway.flush_audit()
    # then
    assert status == 200
    event = AuditEvent.objects.get(request_id="after-the-storm")
    assert (event.decision, event.tool, event.status_code) == ("allowed", "search", 200)


def test_an_mcp_target_is_one_endpoint_and_its_sub_paths_are_404_even_for_get_and_delete(
    gateway, hostile_setup
):
    upstream, _, mcp_token = hostile_setup
    port = gateway.server.port
    sub_paths = [
        raw_request(port, http(method, b"/mcp/tools/api/users/42", mcp_token)) for method in ("GET", "DELETE")
    ]
    endpoint = raw_request(port, http("DELETE", b"/mcp/tools/", mcp_token))
    assert (sub_paths, endpoint) == ([404, 404], 200)  # the endpoint's DELETE is still session plumbing
    assert [(method, path) for method, path, _, _ in upstream.seen] == [("DELETE", b"/mcp-up")]


def test_the_audit_event_keeps_the_path_as_the_agent_sent_it(gateway, hostile_setup):
    _, web_token, _ = hostile_setup
    request = http("GET", b"/mcp/web/public/%2e%2e/admin", web_token, headers=b"X-Request-ID: dotted\r\n")
    status = raw_request(gateway.server.port, request)
    gateway.flush_audit()
    event = AuditEvent.objects.get(request_id="dotted")
    assert (status, event.path, event.route, event.decision) == (
        403,
        "/mcp/web/public/%2e%2e/admin",
        "GET /admin",
        "denied",
    )
