"""Authentication as an agent sees it: one 401 for every refused credential, no query for junk tokens."""

from __future__ import annotations

import secrets
import time
from datetime import timedelta

import httpx2
import orjson
import pytest
from django.utils import timezone

from audit.models import AuditEvent
from gateway.services import credential_revoke
from gateway.tokens import generate_token
from tests.conftest import issue_credential
from tests.queries import count_request_queries

HEADERS = {
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
    "MCP-Protocol-Version": "2026-07-28",
    "Mcp-Method": "tools/list",
}
# The modern (2026-07-28) protocol is stateless: one POST is one whole call.
META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"},
    "io.modelcontextprotocol/clientCapabilities": {},
}
BODY = orjson.dumps({"jsonrpc": "2.0", "id": 7, "method": "tools/list", "params": {"_meta": META}})


def _post(client: httpx2.Client | None, url: str, token: str | bytes | None) -> httpx2.Response:
    headers: dict[str, str | bytes] = dict(HEADERS)
    if isinstance(token, bytes):
        headers["Authorization"] = b"Bearer " + token
    elif token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if client is None:
        return httpx2.post(url, content=BODY, headers=headers, timeout=10)
    return client.post(url, content=BODY, headers=headers)


def _wrong_secret(token: str) -> str:
    scheme, prefix, _ = token.split("_", 2)
    return f"{scheme}_{prefix}_{secrets.token_urlsafe(32)}"


def _revoked(issued):
    credential_revoke(credential=issued.credential)
    return issued.token


def _expired(issued):
    issued.credential.expires_at = timezone.now() - timedelta(seconds=1)
    issued.credential.save()
    return issued.token


CASES = {
    "missing": (lambda issued: None, "No credential presented", False),
    "malformed": (lambda issued: "not-a-gateway-token", "Malformed token", False),
    "unknown prefix": (lambda issued: generate_token().token, "Unknown token prefix", False),
    "bad secret": (
        lambda issued: _wrong_secret(issued.token),
        "Token secret does not match its prefix",
        False,
    ),
    "revoked": (_revoked, "Credential revoked", True),
    "expired": (_expired, "Credential expired", True),
}


@pytest.mark.parametrize("case", list(CASES))
def test_every_refused_credential_gets_the_same_401_and_the_audit_keeps_the_reason(
    gateway, tenant, target, case
):
    make_token, reason, attributed = CASES[case]
    issued = issue_credential(tenant, target, "POST /tools/search")
    response = _post(None, gateway.proxy_url("docs"), make_token(issued))

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == (
        f'Bearer realm="mcp-gateway", resource_metadata="{gateway.url}/.well-known/oauth-protected-resource/mcp/docs/"'
    )
    assert response.json() == {  # refused before the body is read: the id is not known yet
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32001, "message": "Invalid or missing credential"},
    }
    gateway.flush_audit()
    [event] = AuditEvent.objects.filter(kind="call")
    assert (event.decision, event.status_code, event.reason) == ("denied", 401, reason)
    assert event.credential_id == (issued.credential.id if attributed else None)


def _warm_up(client: httpx2.Client, url: str) -> None:
    """Call until refusals cost no query: the target and the prefixes are loaded, and the
    invalidations that the fixtures' own writes caused have all been seen."""
    from policies.cache import policy_cache
    from policies.selectors import policy_version_get

    policy_cache.observe_version(policy_version_get())  # the version poll will find nothing new
    deadline = time.monotonic() + 15
    quiet = 0
    while quiet < 3:
        with count_request_queries() as queries:
            assert _post(client, url, generate_token().token).status_code == 401
        quiet = 0 if queries.statements else quiet + 1
        assert time.monotonic() < deadline, "the policy cache never settled"
        time.sleep(0.05)


def test_random_tokens_cost_no_database_query_once_the_prefixes_are_loaded(gateway, tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/search")
    url = gateway.proxy_url("docs")
    with httpx2.Client(timeout=10) as client:
        _warm_up(client, url)
        with count_request_queries() as queries:
            statuses = {_post(client, url, generate_token().token).status_code for _ in range(200)}
            statuses |= {
                _post(client, url, junk).status_code for junk in ("x", "mgw_", "mgw_a_b", "é".encode() * 30)
            }
        assert statuses == {401}
        assert queries.statements == []
        assert _post(client, url, issued.token).status_code == 200  # the real token still works


def test_a_credential_created_after_the_prefixes_were_loaded_works_on_its_first_call(gateway, tenant, target):
    url = gateway.proxy_url("docs")
    assert _post(None, url, generate_token().token).status_code == 401  # prefixes loaded
    issued = issue_credential(tenant, target, "POST /tools/search")
    response = _post(None, url, issued.token)
    assert response.status_code == 200, response.text


def test_after_a_rotation_the_new_token_works_at_once_and_the_old_one_is_an_unknown_prefix(
    gateway, tenant, target
):
    from gateway.services import credential_rotate

    old = issue_credential(tenant, target, "POST /tools/search")
    url = gateway.proxy_url("docs")
    assert _post(None, url, old.token).status_code == 200  # prefixes and credential cached

    new = credential_rotate(credential=old.credential)

    assert _post(None, url, new.token).status_code == 200
    assert _post(None, url, old.token).status_code == 401
    gateway.flush_audit()
    assert AuditEvent.objects.filter(status_code=401).get().reason == "Unknown token prefix"
