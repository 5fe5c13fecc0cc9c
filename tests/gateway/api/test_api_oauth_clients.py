"""What an integration notices managing OAuth clients through the API: the client secret is in the
create answer once and works at the token endpoint, never shown again; lists filter by credential;
deleting a client revokes its tokens; bad input names the field; read tokens and reviewers change
nothing."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from django.test import Client
from oauth2_provider.models import AccessToken, Application

from audit.models import AuditEvent
from gateway.models import Credential
from gateway.oauth.models import OAuthClient
from gateway.services import credential_create, credential_revoke, target_create, tenant_create
from tests.gateway.api.clients import Caller, api_caller, member_caller

pytestmark = pytest.mark.django_db
RESOURCE = "http://testserver/mcp/docs/"


@pytest.fixture
def agent() -> Credential:
    tenant = tenant_create(name="acme")
    target = target_create(tenant=tenant, slug="docs", upstream_url="http://127.0.0.1:9/mcp")
    return credential_create(
        tenant=tenant, name="robot", targets=[target], allow=[("POST", "/tools/search")]
    ).credential


@pytest.fixture
def admin(agent: Credential) -> Caller:
    return member_caller(agent.tenant, "admin", "alice")


def create_client(caller: Caller, credential: Credential, **fields: Any) -> dict[str, Any]:
    body = {"credential": credential.pk, "grant": "client_credentials", **fields}
    response = caller.call("POST", "/api/v1/oauth-clients/", body)
    assert response.status_code == 201, response.content
    return response.json()  # type: ignore[no-any-return]


def token_request(client_id: str, secret: str) -> Any:
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return Client().post(
        "/oauth/token/",
        {"grant_type": "client_credentials", "resource": RESOURCE},
        HTTP_AUTHORIZATION=f"Basic {basic}",
    )


def test_client_secret_is_shown_once_and_gets_a_token(admin: Caller, agent: Credential) -> None:
    created = create_client(admin, agent)
    client, secret = created["oauth_client"], created["client_secret"]
    assert client["credential"] == agent.pk and client["grant"] == "client_credentials"
    assert client["registered_by"] == "manual" and "client_secret" not in client
    for path in ("/api/v1/oauth-clients/", f"/api/v1/oauth-clients/{client['id']}/"):
        assert secret not in admin.call("GET", path).content.decode()
    assert secret not in Application.objects.get(client_id=client["client_id"]).client_secret
    issued = token_request(client["client_id"], secret)
    assert issued.status_code == 200, issued.content
    assert issued.json()["access_token"]


def test_list_filters_by_credential(admin: Caller, agent: Credential) -> None:
    other = credential_create(tenant=agent.tenant, name="other", targets=[]).credential
    mine = create_client(admin, agent)["oauth_client"]
    create_client(admin, other)
    rows = admin.call("GET", f"/api/v1/oauth-clients/?credential={agent.pk}").json()["results"]
    assert [row["id"] for row in rows] == [mine["id"]]


def test_authorization_code_client_keeps_its_redirect_uris(admin: Caller, agent: Credential) -> None:
    uris = ["https://app.example/callback", "http://127.0.0.1:8765/cb"]
    created = create_client(admin, agent, grant="authorization_code", redirect_uris=uris, name="desk")
    assert created["oauth_client"]["redirect_uris"] == uris
    assert (
        created["oauth_client"]["grant"] == "authorization_code" and created["oauth_client"]["name"] == "desk"
    )


def test_bad_redirect_uri_names_the_field(admin: Caller, agent: Credential) -> None:
    body = {"credential": agent.pk, "grant": "authorization_code", "redirect_uris": ["javascript:alert(1)"]}
    response = admin.call("POST", "/api/v1/oauth-clients/", body)
    assert response.status_code == 400, response.content
    assert list(response.json()["error"]["fields"]) == ["redirect_uris"]
    assert not Application.objects.exists()


def test_unknown_grant_names_the_field(admin: Caller, agent: Credential) -> None:
    response = admin.call("POST", "/api/v1/oauth-clients/", {"credential": agent.pk, "grant": "password"})
    assert response.status_code == 400 and list(response.json()["error"]["fields"]) == ["grant"]


def test_a_revoked_credential_gets_no_client(admin: Caller, agent: Credential) -> None:
    credential_revoke(credential=agent)
    response = admin.call(
        "POST", "/api/v1/oauth-clients/", {"credential": agent.pk, "grant": "client_credentials"}
    )
    assert response.status_code == 400
    assert "revoked" in response.json()["error"]["message"]


def test_deleting_a_client_revokes_it_and_its_tokens(admin: Caller, agent: Credential) -> None:
    created = create_client(admin, agent)
    client = created["oauth_client"]
    assert token_request(client["client_id"], created["client_secret"]).status_code == 200
    assert AccessToken.objects.count() == 1
    assert admin.call("DELETE", f"/api/v1/oauth-clients/{client['id']}/").status_code == 204
    assert not AccessToken.objects.exists() and not OAuthClient.objects.exists()
    assert token_request(client["client_id"], created["client_secret"]).status_code == 401


def test_clients_cannot_be_changed_only_replaced(admin: Caller, agent: Credential) -> None:
    client = create_client(admin, agent)["oauth_client"]
    response = admin.call("PATCH", f"/api/v1/oauth-clients/{client['id']}/", {"name": "renamed"})
    assert response.status_code == 405


def test_a_read_token_and_a_reviewer_create_no_client(admin: Caller, agent: Credential) -> None:
    body = {"credential": agent.pk, "grant": "client_credentials"}
    reader = api_caller(admin.user, scope="read")
    assert reader.call("GET", "/api/v1/oauth-clients/").status_code == 200
    assert reader.call("POST", "/api/v1/oauth-clients/", body).status_code == 403
    reviewer = member_caller(agent.tenant, "reviewer", "rita")
    assert reviewer.call("GET", "/api/v1/oauth-clients/").status_code == 403
    assert reviewer.call("POST", "/api/v1/oauth-clients/", body).status_code == 403
    assert not OAuthClient.objects.exists()


def test_issuing_and_revoking_a_client_is_in_the_change_log(admin: Caller, agent: Credential) -> None:
    created = create_client(admin, agent)
    admin.call("DELETE", f"/api/v1/oauth-clients/{created['oauth_client']['id']}/")
    changes = AuditEvent.objects.filter(kind="change", details__object_type="oauthclient").order_by("id")
    assert [event.details["action"] for event in changes] == ["create", "delete"]
    for event in changes:
        assert (event.tenant_id, event.credential_id) == (agent.tenant_id, agent.pk)
        assert (event.details["source"], event.details["actor"]) == ("api", "alice")
        assert created["client_secret"] not in str(event.details)
