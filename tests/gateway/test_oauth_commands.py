"""The OAuth commands: a client for a credential (its secret shown once, stored hashed), and the
tenant settings that say which self-registered clients a tenant accepts."""

from __future__ import annotations

import json
import shlex
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from oauth2_provider.models import Application

from gateway.models import Tenant
from gateway.services import credential_create, target_create, tenant_create


def run_json(line: str) -> Any:
    out = StringIO()
    call_command(*shlex.split(line), "--json", stdout=out, stderr=StringIO())
    return json.loads(out.getvalue())


@pytest.fixture
def credential(db: None) -> Any:
    tenant = tenant_create(name="acme")
    target = target_create(tenant=tenant, slug="docs", upstream_url="http://127.0.0.1:9/mcp")
    return credential_create(
        tenant=tenant, name="robot", targets=[target], allow=[("POST", "/tools/search")]
    ).credential


def test_create_oauth_client_shows_the_secret_once_and_stores_its_hash(credential):
    data = run_json(f"create_oauth_client --credential {credential.id} --grant client_credentials")

    application = Application.objects.get(client_id=data["client_id"])
    assert data["credential_id"] == credential.id and data["grant"] == "client_credentials"
    assert application.gateway_client.credential == credential
    assert len(data["client_secret"]) >= 40 and data["client_secret"] not in application.client_secret
    assert application.client_secret.startswith("md5$") or "$" in application.client_secret


def test_create_oauth_client_refuses_a_revoked_credential_with_a_clear_error(credential):
    call_command("revoke_credential", str(credential.id), stdout=StringIO())

    with pytest.raises(CommandError, match="is revoked"):
        call_command(
            "create_oauth_client", "--credential", str(credential.id), "--grant", "client_credentials"
        )


def test_create_oauth_client_needs_an_existing_credential(db):
    with pytest.raises(CommandError, match="No credential with id '999'"):
        call_command("create_oauth_client", "--credential", "999", "--grant", "client_credentials")


def test_tenants_accept_registered_clients_only_when_told(db):
    created = run_json("create_tenant acme --allow-dcr --oauth-scope tools:search")
    updated = run_json(
        "update_tenant acme --no-allow-dcr --allow-cimd --oauth-scope 'tools:*' --oauth-scope mcp"
    )

    assert (created["oauth_allow_dcr"], created["oauth_allow_cimd"], created["oauth_scopes"]) == (
        True,
        False,
        ["tools:search"],
    )
    assert (updated["oauth_allow_dcr"], updated["oauth_allow_cimd"], updated["oauth_scopes"]) == (
        False,
        True,
        ["tools:*", "mcp"],
    )
    kept = run_json("update_tenant acme")
    assert kept == updated
    assert Tenant.objects.get().oauth_allow_cimd


def test_a_scope_the_gateway_cannot_map_is_refused(db):
    tenant_create(name="acme")

    with pytest.raises(CommandError, match=r"oauth_scopes: .*'admin:everything'"):
        call_command("update_tenant", "acme", "--oauth-scope", "admin:everything")


@pytest.fixture
def admin_client_logged_in(db: None, client: Any, django_user_model: Any) -> Any:
    user = django_user_model.objects.create_superuser("admin", "admin@example.com", "pw-0123456789")
    client.force_login(user)
    return client


def test_the_credential_page_issues_lists_and_revokes_oauth_clients(admin_client_logged_in, credential):
    from gateway.oauth.models import OAuthClient

    url = "/admin/gateway/credential/"
    issued = admin_client_logged_in.post(
        url, {"action": "issue_oauth_client", "_selected_action": [credential.id]}, follow=True
    )
    binding = OAuthClient.objects.get(credential=credential)
    assert "copy it now" in issued.content.decode()

    page = admin_client_logged_in.get(f"{url}{credential.id}/change/").content.decode()
    assert binding.application.client_id in page

    form = {
        "tenant": credential.tenant_id,
        "name": credential.name,
        "kind": "api_key",
        "targets": [t.id for t in credential.targets.all()],
        "jwt_subject_claim": "sub",
        "jwt_leeway_seconds": "30",
    }
    prefixes = {"rules": credential.rules.all(), "meters": [], "oauth_clients": [binding]}
    for prefix, rows in prefixes.items():
        rows = list(rows)
        form.update({f"{prefix}-TOTAL_FORMS": len(rows), f"{prefix}-INITIAL_FORMS": len(rows)})
        for index, row in enumerate(rows):
            form[f"{prefix}-{index}-id"] = row.id
    form["oauth_clients-0-DELETE"] = "on"
    for index, rule in enumerate(credential.rules.all()):
        form.update(
            {
                f"rules-{index}-credential": credential.id,
                f"rules-{index}-method": rule.method,
                f"rules-{index}-path": rule.path,
                f"rules-{index}-order": rule.order,
            }
        )
    answer = admin_client_logged_in.post(f"{url}{credential.id}/change/", form)

    assert answer.status_code == 302, answer.content.decode()[:3000]
    assert not Application.objects.filter(pk=binding.application_id).exists()


def test_list_oauth_clients_shows_each_client_of_a_credential_never_its_secret(credential):
    created = run_json(f"create_oauth_client --credential {credential.id} --grant client_credentials")
    other = credential_create(tenant=credential.tenant, name="other", targets=[]).credential
    run_json(f"create_oauth_client --credential {other.id} --grant client_credentials")

    listed = run_json(f"list_oauth_clients --credential {credential.id}")["oauth_clients"]

    assert [(c["client_id"], c["credential_id"], c["grant"]) for c in listed] == [
        (created["client_id"], credential.id, "client_credentials")
    ]
    assert len(run_json("list_oauth_clients --tenant acme")["oauth_clients"]) == 2
    assert created["client_secret"] not in json.dumps(run_json("list_oauth_clients"))


def test_delete_oauth_client_revokes_the_client(credential):
    created = run_json(f"create_oauth_client --credential {credential.id} --grant client_credentials")

    deleted = run_json(f"delete_oauth_client {created['client_id']}")

    assert deleted == {"client_id": created["client_id"], "credential_id": credential.id, "deleted": True}
    assert not Application.objects.filter(client_id=created["client_id"]).exists()
    with pytest.raises(CommandError, match="No OAuth client with client id"):
        call_command("delete_oauth_client", created["client_id"])
