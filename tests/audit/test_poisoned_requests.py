"""A request built to poison the audit trail does not stop it: calls made afterwards are audited.

Runs against the configured database (PostgreSQL with ``DATABASE_URL``, else SQLite): both refused
the old writer's batch (``DataError`` and ``OverflowError``) and it never recovered.
"""

from __future__ import annotations

import socket

import httpx2
import orjson

from audit.models import AuditEvent
from tests.conftest import issue_credential
from tests.metering.conftest import JSONRPC_HEADERS, MODERN, MODERN_META

HEADERS = {**JSONRPC_HEADERS, "MCP-Protocol-Version": MODERN}


def raw_request(port: int, head: bytes, body: bytes = b"") -> bytes:
    """Send bytes no well-behaved client would; return what came back (maybe nothing)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + body)
        sock.shutdown(socket.SHUT_WR)
        reply = b""
        try:
            while chunk := sock.recv(65536):
                reply += chunk
        except TimeoutError:
            pass
        return reply


def tool_call(request_id: object, name: str = "search", method: str = "tools/call") -> bytes:
    message = {"jsonrpc": "2.0", "id": request_id, "method": method}
    message["params"] = {"name": name, "arguments": {"query": "q"}, "_meta": MODERN_META}
    return orjson.dumps(message)


def post(url: str, token: str, body: bytes, name: str | None = None) -> httpx2.Response:
    named = {"Mcp-Method": "tools/call", "Mcp-Name": name} if name else {}
    headers = {**HEADERS, "Authorization": f"Bearer {token}", **named}
    return httpx2.post(url, content=body, headers=headers, timeout=30)


def test_poisoned_requests_do_not_stop_the_audit_trail(gateway, tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/search")
    url = gateway.proxy_url("docs")
    port = gateway.server.port
    auth = f"Authorization: Bearer {issued.token}\r\n".encode()

    # when: requests carrying NUL, absurd sizes and huge or odd strings reach the gateway
    for declared in (2**63, 2**64 - 1):
        raw_request(
            port,
            b"POST /mcp/docs/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + auth
            + f"Content-Length: {declared}\r\nConnection: close\r\n\r\n".encode(),
            b'{"jsonrpc":"2.0"',
        )
    raw_request(port, b"GET /mcp/docs/%00/x%00 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    post(url, issued.token, tool_call("id-with-\x00-nul", name="se\x00arch"))
    post(url, issued.token, tool_call("x" * 100_000, name="y" * 100_000, method="tools/\x00call"))
    post(url, issued.token, tool_call(1e308, name="\u202e\ufeff\U0001f600"))
    post(url, issued.token, b'{"jsonrpc":"2.0","id":"\\ud800","method":"tools/call"}')

    # then: a call made afterwards is answered and audited, and the writer never stopped
    after = post(url, issued.token, tool_call("after-the-poison"), name="search")
    assert after.status_code == 200, after.text
    gateway.flush_audit()
    after_event = AuditEvent.objects.get(jsonrpc_id="after-the-poison", status_code=200)
    assert (after_event.credential_name, after_event.credential_prefix) == ("agent", issued.credential.prefix)
    status = _audit_status(gateway)
    assert status["writer_restarts"] == 0 and status["lag_events"] == 0
    assert status["quarantined"] == 0
    assert AuditEvent.objects.exclude(kind="change").count() == status["appended"] >= 6
    # the poison reached the trail, made safe: NUL dropped, sizes are bytes actually read
    assert AuditEvent.objects.filter(jsonrpc_id="id-with--nul").count() == 1
    assert list(AuditEvent.objects.filter(status_code=413).values_list("request_bytes", flat=True)) == [0, 0]
    for event in AuditEvent.objects.all():
        for column in ("path", "jsonrpc_id", "tool", "jsonrpc_method", "route", "reason"):
            assert "\x00" not in getattr(event, column)
        assert 0 <= event.request_bytes < 2**20


def _audit_status(gateway) -> dict:
    from gateway.proxy.runtime import runtime_for_loop

    runtime = runtime_for_loop(gateway.server.loop)
    assert runtime is not None
    return runtime.audit.status()


def test_readyz_shows_the_audit_lag_and_what_the_writer_did(gateway, tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/search")
    assert post(gateway.proxy_url("docs"), issued.token, tool_call("seen"), name="search").status_code == 200
    gateway.flush_audit()
    audit = httpx2.get(f"{gateway.url}/readyz", timeout=30).json()["details"]["audit"]
    assert audit["lag_events"] == 0
    assert audit["appended"] == audit["stored"] == 1
    assert audit["database"] == "ok"
