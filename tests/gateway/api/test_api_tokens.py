"""API tokens: who they act as, what a read token may do, and when a token stops working."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from gateway.models import ApiToken
from gateway.services import api_token_revoke, tenant_create
from tests.commands import run_command
from tests.gateway.api.clients import member_caller, superuser_caller

pytestmark = pytest.mark.django_db


def test_token_and_bearer_headers_both_authenticate() -> None:
    caller = superuser_caller()
    assert caller.call("GET", "/api/v1/tenants/").status_code == 200
    response = Client().get("/api/v1/tenants/", HTTP_AUTHORIZATION=f"Bearer {caller.token}")
    assert response.status_code == 200


def test_call_without_token_is_refused_with_401_and_error_body() -> None:
    response = Client().get("/api/v1/tenants/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_read_token_cannot_write() -> None:
    caller = superuser_caller(scope="read")
    assert caller.call("GET", "/api/v1/tenants/").status_code == 200
    response = caller.call("POST", "/api/v1/tenants/", {"name": "acme"})
    assert response.status_code == 403
    assert "read-only" in response.json()["error"]["message"]


def test_revoked_token_is_refused_on_next_call() -> None:
    caller = superuser_caller()
    assert caller.call("GET", "/api/v1/tenants/").status_code == 200
    api_token_revoke(api_token=ApiToken.objects.get(user=caller.user))
    response = caller.call("GET", "/api/v1/tenants/")
    assert response.status_code == 401
    assert caller.token not in response.content.decode()


def test_expired_token_is_refused() -> None:
    caller = superuser_caller()
    ApiToken.objects.filter(user=caller.user).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert caller.call("GET", "/api/v1/tenants/").status_code == 401


def test_token_of_a_deactivated_user_is_refused() -> None:
    caller = superuser_caller()
    User.objects.filter(pk=caller.user.pk).update(is_active=False)
    assert caller.call("GET", "/api/v1/tenants/").status_code == 401


def test_tampered_token_is_refused() -> None:
    caller = superuser_caller()
    caller.token = caller.token[:-2] + ("AA" if not caller.token.endswith("AA") else "BB")
    assert caller.call("GET", "/api/v1/tenants/").status_code == 401


def test_agent_credential_token_is_not_an_api_token() -> None:
    from gateway.services import credential_create

    issued = credential_create(tenant=tenant_create(name="acme"), name="agent")
    response = Client().get("/api/v1/tenants/", HTTP_AUTHORIZATION=f"Bearer {issued.token}")
    assert response.status_code == 401


def test_only_the_digest_is_stored() -> None:
    caller = superuser_caller()
    row = ApiToken.objects.get(user=caller.user)
    assert caller.token not in (row.secret_hash, row.prefix)
    assert caller.token.startswith(f"mga_{row.prefix}_")


def test_create_api_token_command_prints_the_token_once_as_json() -> None:
    tenant = tenant_create(name="acme")
    member_caller(tenant, "admin", "alice")
    out = json.loads(run_command("create_api_token --user alice --scope write --expires-in 3600 --json"))
    assert out["scope"] == "write" and out["user"] == "alice" and out["expires_at"]
    response = Client().get("/api/v1/targets/", HTTP_AUTHORIZATION=f"Token {out['token']}")
    assert response.status_code == 200
    assert not AuditEvent.objects.filter(details__icontains=out["token"]).exists()


def test_session_writes_need_the_csrf_token() -> None:
    caller = superuser_caller()
    client = Client(enforce_csrf_checks=True)
    client.force_login(caller.user)
    assert client.get("/api/v1/tenants/").status_code == 200
    response = client.post("/api/v1/tenants/", {"name": "acme"}, content_type="application/json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]["message"]


def test_only_superusers_see_api_tokens_in_the_admin() -> None:
    root = superuser_caller()
    alice = member_caller(tenant_create(name="acme"), "admin", "alice")
    row = ApiToken.objects.get(user=alice.user)
    as_root, as_alice = Client(), Client()
    as_root.force_login(root.user)
    as_alice.force_login(alice.user)
    changelist = "/admin/gateway/apitoken/"
    page = as_root.get(changelist)
    assert page.status_code == 200 and row.prefix in page.content.decode()
    assert alice.token not in page.content.decode()
    assert as_alice.get(changelist).status_code == 403
    assert as_alice.get(f"{changelist}{row.pk}/change/").status_code in (403, 404)
    as_root.post(changelist, {"action": "revoke_selected", "_selected_action": [row.pk]})
    assert ApiToken.objects.get(pk=row.pk).revoked_at is not None
    assert alice.call("GET", "/api/v1/targets/").status_code == 401
