"""Headless agents: an OAuth client an admin created for a credential gets client credentials tokens
that act as that credential at one target, narrowed by their scopes, and stop working the moment the
credential, the client or the token is revoked."""

from __future__ import annotations

import time
from typing import Any

import httpx2
import orjson
import pytest

from audit.models import AuditEvent
from gateway.models import Target, Tenant
from gateway.oauth.services import IssuedOAuthClient, oauth_client_create, oauth_client_delete
from gateway.services import credential_deactivate, credential_revoke, target_create
from tests.conftest import Gateway, Upstream, issue_credential
from tests.gateway.oauth_support import client_credentials_token
from tests.queries import count_request_queries

META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"},
    "io.modelcontextprotocol/clientCapabilities": {},
}


def call(
    url: str, token: str, method: str = "tools/list", name: str | None = None, **params: Any
) -> httpx2.Response:
    """One stateless MCP call (protocol 2026-07-28) with ``token``."""
    headers = {
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "MCP-Protocol-Version": "2026-07-28",
        "Mcp-Method": method,
        "Authorization": f"Bearer {token}",
    }
    body: dict[str, Any] = {"_meta": META, **params}
    if name is not None:
        headers["Mcp-Name"] = name
        body["name"] = name
    payload = {"jsonrpc": "2.0", "id": 1, "method": method, "params": body}
    return httpx2.post(url, content=orjson.dumps(payload), headers=headers, timeout=10)


def search(url: str, token: str) -> httpx2.Response:
    return call(url, token, "tools/call", "search", arguments={"query": "q"})


@pytest.fixture
def client(tenant: Tenant, target: Target) -> IssuedOAuthClient:
    issued = issue_credential(tenant, target, "POST /tools/search", "POST /tools/profile", name="robot")
    return oauth_client_create(credential=issued.credential, grant="client_credentials")


def token_for(gateway: Gateway, client: IssuedOAuthClient, resource: str, **extra: str) -> str:
    reply = client_credentials_token(
        gateway.url, client.application.client_id, client.client_secret, resource, **extra
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 600 and "refresh_token" not in body
    return str(body["access_token"])


def test_a_client_credentials_token_calls_an_allowed_tool(gateway, client):
    token = token_for(gateway, client, gateway.proxy_url("docs"))

    reply = search(gateway.proxy_url("docs"), token)

    assert reply.status_code == 200, reply.text
    assert "q" in reply.text
    gateway.flush_audit()
    event = AuditEvent.objects.exclude(kind="change").get()
    assert event.credential_id == client.binding.credential_id and token not in str(event.__dict__)


def test_revoking_the_credential_refuses_its_token_at_once(gateway, client):
    url = gateway.proxy_url("docs")
    token = token_for(gateway, client, url)
    assert search(url, token).status_code == 200

    credential_revoke(credential=client.binding.credential)

    assert search(url, token).status_code == 401
    gateway.flush_audit()
    assert AuditEvent.objects.filter(status_code=401).get().reason == "Credential revoked"


def test_a_deactivated_credential_gets_no_new_token(gateway, client):
    credential_deactivate(credential=client.binding.credential)

    reply = client_credentials_token(
        gateway.url, client.application.client_id, client.client_secret, gateway.proxy_url("docs")
    )

    assert reply.status_code == 400 and reply.json()["error"] == "invalid_target"


def test_deleting_the_oauth_client_refuses_its_tokens(gateway, client):
    url = gateway.proxy_url("docs")
    token = token_for(gateway, client, url)
    assert search(url, token).status_code == 200

    oauth_client_delete(application=client.application)

    assert search(url, token).status_code == 401


def test_a_scope_narrows_the_credential_and_never_widens_it(gateway, client):
    url = gateway.proxy_url("docs")
    narrow = token_for(gateway, client, url, scope="tools:search tools:delete_all")

    assert search(url, narrow).status_code == 200
    assert call(url, narrow, "tools/call", "profile", arguments={}).status_code == 400  # not in the scope
    assert call(url, narrow, "tools/call", "delete_all", arguments={}).status_code == 400  # not in the rules
    listed = [tool["name"] for tool in call(url, narrow).json()["result"]["tools"]]
    assert listed == ["search"]


def test_a_token_request_must_name_a_target_the_credential_may_use(
    gateway, client, tenant, upstream: Upstream
):
    target_create(tenant=tenant, slug="elsewhere", upstream_url=upstream.url)
    secret, client_id = client.client_secret, client.application.client_id

    missing = httpx2.post(
        f"{gateway.url}/oauth/token/", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )
    elsewhere = client_credentials_token(gateway.url, client_id, secret, gateway.proxy_url("elsewhere"))
    unknown = client_credentials_token(gateway.url, client_id, secret, gateway.proxy_url("nowhere"))
    foreign_host = client_credentials_token(
        gateway.url, client_id, secret, "https://evil.example/mcp/docs/?x"
    )

    for reply in (missing, elsewhere, unknown, foreign_host):
        assert reply.status_code == 400 and reply.json()["error"] == "invalid_target", reply.text


def test_a_wrong_client_secret_gets_no_token(gateway, client):
    reply = client_credentials_token(
        gateway.url, client.application.client_id, "not-the-secret", gateway.proxy_url("docs")
    )

    assert reply.status_code == 401 and reply.json()["error"] == "invalid_client"


def test_forged_and_unknown_tokens_are_refused_with_their_reason(gateway, client):
    url = gateway.proxy_url("docs")
    token = token_for(gateway, client, url)
    scheme, _, tag = token.split("_")
    forged = f"{scheme}_{'0' * 64}_{tag}"
    unknown_but_signed = token[:-1]  # a changed tag no longer checks

    assert search(url, forged).status_code == 401
    assert search(url, unknown_but_signed).status_code == 401
    gateway.flush_audit()
    reasons = set(AuditEvent.objects.filter(status_code=401).values_list("reason", flat=True))
    assert reasons == {"Malformed or forged OAuth token"}


def test_a_warm_token_check_makes_no_database_query(gateway, client):
    url = gateway.proxy_url("docs")
    token = token_for(gateway, client, url)
    with httpx2.Client(timeout=10) as http:
        deadline, quiet = time.monotonic() + 15, 0
        while quiet < 3:  # until the target, the credential and the token are cached
            with count_request_queries() as queries:
                assert (
                    http.post(url, content=b"{}", headers={"Authorization": f"Bearer {token}"}).status_code
                    == 400
                )
            quiet = 0 if queries.statements else quiet + 1
            assert time.monotonic() < deadline, queries.statements
        with count_request_queries() as queries:
            statuses = {
                http.post(url, content=b"{}", headers={"Authorization": f"Bearer {token}"}).status_code
                for _ in range(20)
            }

    assert statuses == {400}  # authenticated, then refused as an invalid JSON-RPC request
    assert queries.statements == []


def test_revocation_endpoint_revokes_and_introspection_answers_the_owner_only(
    gateway, client, tenant, target
):
    url = gateway.proxy_url("docs")
    token = token_for(gateway, client, url)
    auth = (client.application.client_id, client.client_secret)
    stranger_credential = issue_credential(tenant, target, "POST /tools/search", name="stranger").credential
    stranger = oauth_client_create(credential=stranger_credential, grant="client_credentials")

    own = httpx2.post(f"{gateway.url}/oauth/introspect/", data={"token": token}, auth=auth).json()
    theirs = httpx2.post(
        f"{gateway.url}/oauth/introspect/",
        data={"token": token},
        auth=(stranger.application.client_id, stranger.client_secret),
    ).json()

    assert own["active"] is True and own["aud"] == [url] and own["scope"] == "mcp"
    assert theirs == {"active": False}

    revoked = httpx2.post(f"{gateway.url}/oauth/revoke/", data={"token": token}, auth=auth)

    assert revoked.status_code == 200
    assert search(url, token).status_code == 401
    assert httpx2.post(f"{gateway.url}/oauth/introspect/", data={"token": token}, auth=auth).json() == {
        "active": False
    }
