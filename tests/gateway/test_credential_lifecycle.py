"""Credentials are deactivated, never deleted while audit events refer to them."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import httpx2
import orjson
import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db.models import ProtectedError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from gateway.models import Credential, Target, Tenant
from gateway.services import credential_create, credential_deactivate, target_create, tenant_create
from policies.selectors import compile_credential
from tests.conftest import issue_credential

UPSTREAM = "http://127.0.0.1:9/mcp"


@pytest.fixture
def acme(db: None) -> Tenant:
    return tenant_create(name="acme")


@pytest.fixture
def docs(acme: Tenant) -> Target:
    return target_create(tenant=acme, slug="docs", upstream_url=UPSTREAM)


@pytest.fixture
def admin(db: None, client: Client, django_user_model: type[User]) -> Client:
    user = django_user_model.objects.create_superuser("root", "root@example.com", "unused-password")
    client.force_login(user)
    return client


def audited(credential: Credential) -> AuditEvent:
    """An audit event of a call the credential made."""
    return AuditEvent.objects.create(
        created_at=timezone.now(),
        request_id="req-1",
        tenant_id=credential.tenant_id,
        credential=credential,
        http_method="POST",
        path="/mcp/docs/",
        decision="allowed",
        status_code=200,
        latency_ms=1.0,
    )


def test_deactivating_keeps_the_credential_and_its_audit_trail(docs):
    credential = credential_create(tenant=docs.tenant, name="agent", targets=[docs]).credential
    event = audited(credential)

    credential_deactivate(credential=credential)

    credential.refresh_from_db()
    assert credential.status == "deactivated"
    assert credential.revoked_at is not None and credential.deactivated_at is not None
    assert AuditEvent.objects.get(pk=event.pk).credential == credential
    assert compile_credential(credential).revoked


def test_deactivating_twice_keeps_the_first_time(docs):
    credential = credential_create(tenant=docs.tenant, name="agent", targets=[docs]).credential
    first = credential_deactivate(credential=credential).deactivated_at
    assert credential_deactivate(credential=Credential.objects.get(pk=credential.pk)).deactivated_at == first


def test_a_deactivated_credential_stays_refused_even_if_its_revocation_is_cleared(docs):
    credential = credential_create(tenant=docs.tenant, name="agent", targets=[docs]).credential
    credential_deactivate(credential=credential)
    Credential.objects.filter(pk=credential.pk).update(revoked_at=None)
    assert compile_credential(Credential.objects.get(pk=credential.pk)).revoked


def test_a_deactivated_credential_gives_its_name_back(docs):
    old = credential_create(tenant=docs.tenant, name="agent", targets=[docs]).credential
    credential_deactivate(credential=old)
    new = credential_create(tenant=docs.tenant, name="agent", targets=[docs]).credential
    assert new.pk != old.pk
    assert Credential.objects.filter(name="agent").count() == 2


def test_a_credential_with_audit_events_cannot_be_deleted(docs):
    credential = credential_create(tenant=docs.tenant, name="agent", targets=[docs]).credential
    audited(credential)

    with pytest.raises(ProtectedError, match="Deactivate them instead"):
        credential.delete()
    with pytest.raises(ProtectedError):
        Credential.objects.filter(pk=credential.pk).delete()
    assert Credential.objects.filter(pk=credential.pk).exists()


def test_a_credential_never_used_can_still_be_deleted(docs):
    credential = credential_create(tenant=docs.tenant, name="agent", targets=[docs]).credential
    credential.delete()
    assert not Credential.objects.exists()


def test_deleting_a_tenant_is_refused_while_its_credentials_have_audit_events(docs):
    credential = credential_create(tenant=docs.tenant, name="agent", targets=[docs]).credential
    audited(credential)

    with pytest.raises(ProtectedError) as refused:
        docs.tenant.delete()
    assert credential in refused.value.protected_objects
    assert Tenant.objects.filter(pk=docs.tenant.pk).exists()
    assert Credential.objects.filter(pk=credential.pk).exists()


def test_deleting_a_tenant_whose_credentials_were_never_used_cascades(docs):
    credential_create(tenant=docs.tenant, name="agent", targets=[docs])
    docs.tenant.delete()
    assert not Credential.objects.exists() and not Tenant.objects.exists()


def test_deleting_a_target_keeps_its_credentials_and_their_audit_events(docs):
    credential = credential_create(tenant=docs.tenant, name="agent", targets=[docs]).credential
    event = audited(credential)
    docs.delete()
    assert Credential.objects.filter(pk=credential.pk).exists()
    assert AuditEvent.objects.get(pk=event.pk).credential_id == credential.pk


# The admin


def changelist(admin: Client, query: str = "") -> str:
    return admin.get(reverse("admin:gateway_credential_changelist") + query).content.decode()


def test_the_admin_offers_deactivate_and_no_delete_for_a_credential_with_audit_events(admin, docs):
    credential = credential_create(tenant=docs.tenant, name="agent", targets=[docs]).credential
    audited(credential)
    page = changelist(admin)
    assert "deactivate_selected" in page
    assert "delete_selected" not in page
    change_page = admin.get(reverse("admin:gateway_credential_change", args=[credential.pk])).content.decode()
    assert reverse("admin:gateway_credential_delete", args=[credential.pk]) not in change_page
    response = admin.post(reverse("admin:gateway_credential_delete", args=[credential.pk]), {"post": "yes"})
    assert response.status_code == 403
    assert Credential.objects.filter(pk=credential.pk).exists()


def test_the_admin_deletes_a_credential_that_was_never_used(admin, docs):
    credential = credential_create(tenant=docs.tenant, name="typo", targets=[docs]).credential
    admin.post(reverse("admin:gateway_credential_delete", args=[credential.pk]), {"post": "yes"})
    assert not Credential.objects.filter(pk=credential.pk).exists()


def test_the_deactivate_action_hides_the_credential_from_the_default_list_only(admin, docs):
    kept = credential_create(tenant=docs.tenant, name="kept-agent", targets=[docs]).credential
    retired = credential_create(tenant=docs.tenant, name="retired-agent", targets=[docs]).credential
    audited(retired)

    data = {"action": "deactivate_selected", "_selected_action": [retired.pk]}
    response = admin.post(reverse("admin:gateway_credential_changelist"), data, follow=True)

    assert "Deactivated 1 credential(s)." in [str(m) for m in response.context["messages"]]
    assert Credential.objects.get(pk=retired.pk).status == "deactivated"
    default = changelist(admin)
    assert kept.prefix in default and retired.prefix not in default
    assert "All but deactivated" in default
    only_deactivated = changelist(admin, "?status=deactivated")
    assert retired.prefix in only_deactivated and kept.prefix not in only_deactivated
    everything = changelist(admin, "?status=any")
    assert retired.prefix in everything and kept.prefix in everything
    assert retired.prefix not in changelist(admin, "?status=revoked")


def test_the_admin_refuses_to_delete_a_tenant_whose_credentials_have_audit_events(admin, docs):
    credential = credential_create(tenant=docs.tenant, name="agent", targets=[docs]).credential
    audited(credential)
    url = reverse("admin:gateway_tenant_delete", args=[docs.tenant.pk])

    page = admin.get(url).content.decode()
    admin.post(url, {"post": "yes"})

    assert "would require deleting the following protected related objects" in page
    assert credential.prefix in page
    assert Tenant.objects.filter(pk=docs.tenant.pk).exists()


# The command line


def run_json(*args: str) -> Any:
    out = StringIO()
    call_command("deactivate_credential", *args, "--json", stdout=out, stderr=StringIO())
    return json.loads(out.getvalue())


def test_deactivate_credential_command_deactivates_once(docs):
    credential = credential_create(tenant=docs.tenant, name="agent", targets=[docs]).credential
    first = run_json(str(credential.pk))
    second = run_json(str(credential.pk))
    assert (first["status"], first["already_deactivated"]) == ("deactivated", False)
    assert second["already_deactivated"] is True
    assert first["deactivated_at"] == second["deactivated_at"]


# The proxy


def test_a_deactivated_credential_is_refused_like_a_revoked_one(gateway, tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/search")
    credential_deactivate(credential=issued.credential)
    response = httpx2.post(
        gateway.proxy_url("docs"),
        content=orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
        headers={
            "Authorization": f"Bearer {issued.token}",
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
        },
        timeout=10,
    )
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Invalid or missing credential"
    gateway.flush_audit()
    [event] = AuditEvent.objects.exclude(kind="change")  # the revocation itself is in the change log
    assert (event.credential_id, event.reason) == (issued.credential.id, "Credential revoked")
