"""Acceptance: an integration does over HTTP only what the CLI and the admin do. It creates a tenant,
a target, a credential with rules and a meter; an agent calls through the proxy with the credential's
token; the integration revokes the credential (the next call is refused) and finds the calls in the
audit trail, all against the gateway served by a real ASGI server."""

from __future__ import annotations

import time
from typing import Any

import httpx2
import orjson
import pytest

from tests.conftest import Gateway, Upstream, mcp_client, run
from tests.gateway.api.clients import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


def jsonrpc(
    gateway: Gateway, token: str, method: str, params: dict[str, Any] | None = None
) -> httpx2.Response:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}}
    return httpx2.post(
        gateway.proxy_url("docs"),
        content=orjson.dumps(body),
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
        },
        timeout=30,
    )


def refused_within(gateway: Gateway, token: str, seconds: float) -> int:
    """The status of the first refused call within ``seconds`` (revocation reaches every process within
    a second); the last status seen otherwise."""
    deadline = time.monotonic() + seconds
    status = 0
    while time.monotonic() < deadline:
        status = jsonrpc(gateway, token, "tools/list").status_code
        if status == 401:
            return status
        time.sleep(0.1)
    return status


def test_integration_manages_everything_over_http(gateway: Gateway, upstream: Upstream) -> None:
    # given an operator's superuser and its write token (the one step outside the API)
    from django.contrib.auth.models import User

    from gateway.services import api_token_create

    root = User.objects.create_superuser("root", "root@example.com", PASSWORD)
    api_token = api_token_create(user=root, scope="write").token
    api = httpx2.Client(
        base_url=f"{gateway.url}/api/v1", headers={"Authorization": f"Token {api_token}"}, timeout=30
    )

    def post(path: str, body: dict[str, Any]) -> Any:
        response = api.post(path, json=body)
        assert response.status_code in (200, 201), (path, response.text)
        return response.json()

    # when it sets up a tenant, a target, a credential with rules and a meter
    tenant = post("/tenants/", {"name": "acme"})
    target = post(
        "/targets/",
        {"tenant": tenant["id"], "slug": "docs", "upstream_url": upstream.url, "auth_type": "bearer",
         "auth_secret": "upstream-secret-never-shown"},
    )  # fmt: skip
    issued = post(
        "/credentials/",
        {"tenant": tenant["id"], "name": "agent", "targets": [target["id"]],
         "allow": [{"method": "POST", "path": "/tools/search"}]},
    )  # fmt: skip
    credential, token = issued["credential"], issued["token"]
    post("/rules/", {"credential": credential["id"], "method": "POST", "path": "/tools/profile"})
    meter = post(
        "/meters/",
        {"tenant": tenant["id"], "credential": credential["id"], "kind": "request_count", "window": "minute",
         "limit": 100, "route": "POST /tools/*"},
    )  # fmt: skip

    # then the agent's calls go through the proxy as the rules say (the official MCP client)
    async def search() -> Any:
        async with mcp_client(gateway.proxy_url("docs"), token) as client:
            return await client.call_tool("search", {"query": "mcp"})

    assert not run(search()).is_error
    denied = jsonrpc(gateway, token, "tools/call", {"name": "delete_all", "arguments": {}})
    assert "POST /tools/delete_all" in denied.text
    assert api.get(f"/meters/{meter['id']}/").json()["limit"] == 100

    # when it revokes the credential, the next call is refused
    post(f"/credentials/{credential['id']}/revoke/", {})
    assert refused_within(gateway, token, seconds=10) == 401

    # and the audit trail, read through the API, shows the calls
    gateway.flush_audit()
    events = api.get(
        "/audit-events/", params={"credential": "agent", "kind": "call", "page_size": 100}
    ).json()
    seen = {(event["tool"], event["decision"], event["status_code"]) for event in events["results"]}
    assert ("search", "allowed", 200) in seen
    assert ("delete_all", "denied", denied.status_code) in seen
    assert any(event["status_code"] == 401 for event in events["results"])
    changes = api.get("/audit-events/", params={"kind": "change", "page_size": 100}).json()["results"]
    made = {(event["details"]["object_type"], event["details"]["source"]) for event in changes}
    assert {"tenant", "target", "credential", "allowrule", "meter"} <= {kind for kind, _ in made}
    assert {source for kind, source in made if kind != "apitoken"} == {"api"}
    assert "upstream-secret-never-shown" not in str(changes)
    api.close()
