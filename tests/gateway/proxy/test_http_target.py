"""Plain HTTP tool servers are scoped by METHOD /path with the same rules."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest

from gateway.services import target_create
from tests.conftest import issue_credential
from tests.servers import ServerThread
from tests.upstream import answer_lifespan


async def _echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if await answer_lifespan(scope, receive, send):
        return
    headers = {k.decode(): v.decode() for k, v in scope["headers"]}
    body = f'{{"path": "{scope["path"]}", "query": "{scope["query_string"].decode()}", "auth": "{headers.get("x-upstream-key", "")}", "connection_extra": "{headers.get("x-hop", "")}"}}'
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"set-cookie", b"upstream=1")],
        }
    )
    await send({"type": "http.response.body", "body": body.encode()})


@pytest.fixture(scope="module")
def rest_upstream():
    server = ServerThread(_echo_app).start()
    yield server
    server.stop()


@pytest.fixture
def rest_target(tenant, rest_upstream):
    return target_create(
        tenant=tenant,
        slug="rest",
        kind="http",
        upstream_url=f"{rest_upstream.url}/api",
        auth_type="header",
        auth_header_name="X-Upstream-Key",
        auth_secret="rest-secret",
    )


def test_allowed_route_is_forwarded_with_path_query_and_upstream_header(gateway, tenant, rest_target):
    issued = issue_credential(tenant, rest_target, "GET /v1/search")
    response = httpx2.get(
        f"{gateway.url}/mcp/rest/v1/search?q=mcp",
        headers={"X-API-Key": issued.token, "Connection": "keep-alive, X-Hop", "X-Hop": "1"},
    )
    assert response.status_code == 200
    assert response.json() == {
        "path": "/api/v1/search",
        "query": "q=mcp",
        "auth": "rest-secret",
        "connection_extra": "",
    }
    assert "set-cookie" not in response.headers  # response headers cross by allowlist too


def test_route_without_a_rule_is_403_with_the_rule_metadata(gateway, tenant, rest_target):
    issued = issue_credential(tenant, rest_target, "GET /v1/search")
    response = httpx2.delete(f"{gateway.url}/mcp/rest/v1/search", headers={"X-API-Key": issued.token})
    assert response.status_code == 403
    data = response.json()["error"]["data"]
    assert data["route"] == "DELETE /v1/search" and data["rules"][0]["path"] == "/v1/search"
