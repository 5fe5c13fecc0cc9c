"""The admin as an operator uses it: tokens shown once, secrets never shown, tenants kept apart."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from gateway.crypto import decrypt_secret
from gateway.models import Credential, Target, Tenant
from gateway.services import (
    allow_rule_create,
    credential_create,
    credential_revoke,
    target_create,
    tenant_create,
)
from gateway.tokens import token_matches

UPSTREAM = "http://127.0.0.1:9/mcp"
UPSTREAM_SECRET = "upstream-s3cret-never-displayed"
TOKEN = re.compile(r"mgw_[a-z0-9]{10}_[A-Za-z0-9_-]+")


@pytest.fixture
def admin(db: None, client: Client, django_user_model: type[User]) -> Client:
    user = django_user_model.objects.create_superuser("root", "root@example.com", "unused-password")
    client.force_login(user)
    return client


@pytest.fixture
def acme(db: None) -> Tenant:
    return tenant_create(name="acme")


@pytest.fixture
def docs(acme: Tenant) -> Target:
    return target_create(
        tenant=acme, slug="docs", upstream_url=UPSTREAM, auth_type="bearer", auth_secret=UPSTREAM_SECRET
    )


def messages_of(response: Any) -> list[str]:
    return [str(message) for message in response.context["messages"]]


# The meters and OAuth clients inlines' management forms, as the page posts them with no rows.
NO_METERS = {
    "meters-TOTAL_FORMS": "0",
    "meters-INITIAL_FORMS": "0",
    "meters-MIN_NUM_FORMS": "0",
    "meters-MAX_NUM_FORMS": "1000",
    "oauth_clients-TOTAL_FORMS": "0",
    "oauth_clients-INITIAL_FORMS": "0",
}


def credential_form(tenant: Tenant, targets: list[Target], **extra: Any) -> dict[str, Any]:
    """The credential add form as the browser posts it, with one inline allow-rule."""
    return {
        "tenant": tenant.id,
        "name": "agent",
        "targets": [target.id for target in targets],
        "expires_at_0": "",
        "expires_at_1": "",
        "rules-TOTAL_FORMS": "1",
        "rules-INITIAL_FORMS": "0",
        "rules-MIN_NUM_FORMS": "0",
        "rules-MAX_NUM_FORMS": "1000",
        "rules-0-order": "0",
        "rules-0-method": "post",
        "rules-0-path": "/tools/search",
        "rules-0-description": "",
        **NO_METERS,
        **extra,
    }


def target_form(tenant: Tenant, **extra: Any) -> dict[str, Any]:
    return {
        "tenant": tenant.id,
        "slug": "wiki",
        "kind": "mcp",
        "upstream_url": UPSTREAM,
        "timeout_seconds": "30",
        "allowed_origins": "",
        "auth_type": "bearer",
        "auth_header_name": "",
        "upstream_secret": "",
        **NO_METERS,
        **extra,
    }


# Credentials


def test_adding_a_credential_shows_its_token_once_and_never_again(admin, docs):
    response = admin.post(
        reverse("admin:gateway_credential_add"), credential_form(docs.tenant, [docs]), follow=True
    )

    credential = Credential.objects.get(name="agent")
    token_messages = [message for message in messages_of(response) if TOKEN.search(message)]
    assert len(token_messages) == 1
    assert "will not be shown again" in token_messages[0]
    token = TOKEN.search(token_messages[0]).group()
    assert token_matches(token, credential.secret_hash)
    assert response.content.decode().count(token) == 1
    for url in [reverse("admin:gateway_credential_changelist"), credential_change_url(credential)]:
        assert token not in admin.get(url).content.decode()


def test_credential_added_in_the_admin_has_its_targets_and_rules(admin, docs):
    admin.post(reverse("admin:gateway_credential_add"), credential_form(docs.tenant, [docs]))

    credential = Credential.objects.get(name="agent")
    assert list(credential.targets.all()) == [docs]
    assert [(rule.method, rule.path) for rule in credential.rules.all()] == [("POST", "/tools/search")]
    assert len(credential.prefix) == 10


def test_credential_change_page_never_shows_the_secret_hash(admin, docs):
    credential = credential_create(tenant=docs.tenant, name="agent", targets=[docs]).credential

    page = admin.get(credential_change_url(credential)).content.decode()

    assert credential.prefix in page
    assert credential.secret_hash not in page
    assert 'name="prefix"' not in page
    assert 'name="secret_hash"' not in page


def test_credential_cannot_be_bound_to_another_tenants_target(admin, docs):
    globex = tenant_create(name="globex")

    response = admin.post(reverse("admin:gateway_credential_add"), credential_form(globex, [docs]))

    assert response.status_code == 200
    assert "Only targets of tenant globex can be bound; not: docs." in response.content.decode()
    assert not Credential.objects.exists()


def test_existing_credential_cannot_be_moved_onto_another_tenants_target(admin, docs):
    credential = credential_create(tenant=docs.tenant, name="agent", targets=[docs]).credential
    foreign = target_create(tenant=tenant_create(name="globex"), slug="foreign", upstream_url=UPSTREAM)
    form = credential_form(docs.tenant, [foreign], **{"rules-TOTAL_FORMS": "0"})

    response = admin.post(credential_change_url(credential), form)

    assert response.status_code == 200
    assert 'class="errornote"' in response.content.decode()
    assert list(credential.targets.all()) == [docs]


def test_rules_are_listed_in_match_order_on_the_credential_page(admin, docs):
    credential = credential_create(tenant=docs.tenant, name="agent", targets=[docs]).credential
    allow_rule_create(credential=credential, method="POST", path="/tools/second", order=2)
    allow_rule_create(credential=credential, method="POST", path="/tools/first", order=1)

    page = admin.get(credential_change_url(credential)).content.decode()

    assert page.index("/tools/first") < page.index("/tools/second")


def test_revoke_action_revokes_the_selected_credentials_only(admin, docs):
    first = credential_create(tenant=docs.tenant, name="first", targets=[docs]).credential
    second = credential_create(tenant=docs.tenant, name="second", targets=[docs]).credential

    response = run_action(admin, "revoke_selected", [first])

    assert "Revoked 1 credential(s)." in messages_of(response)
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == ("revoked", "active")


def test_rotate_action_shows_each_new_token_once_and_the_old_one_stops_working(admin, docs):
    old = credential_create(tenant=docs.tenant, name="agent", targets=[docs])

    response = run_action(admin, "rotate_token", [old.credential])

    tokens = [TOKEN.search(message).group() for message in messages_of(response) if TOKEN.search(message)]
    assert len(tokens) == 1
    credential = Credential.objects.get(pk=old.credential.pk)
    assert token_matches(tokens[0], credential.secret_hash)
    assert not token_matches(old.token, credential.secret_hash)
    assert response.content.decode().count(tokens[0]) == 1


def test_rotate_action_skips_revoked_credentials_with_a_warning(admin, docs):
    issued = credential_create(tenant=docs.tenant, name="agent", targets=[docs])
    credential_revoke(credential=issued.credential)

    response = run_action(admin, "rotate_token", [issued.credential])

    assert messages_of(response) == ["Credential “agent” is revoked: its token was not rotated."]
    assert Credential.objects.get(pk=issued.credential.pk).secret_hash == issued.credential.secret_hash


def test_credential_list_shows_status_and_prefix(admin, docs):
    issued = credential_create(tenant=docs.tenant, name="agent", targets=[docs])
    credential_revoke(credential=issued.credential)

    page = admin.get(reverse("admin:gateway_credential_changelist") + "?status=revoked").content.decode()

    assert issued.credential.prefix in page
    assert "revoked" in page
    assert issued.credential.secret_hash not in page


# Targets


def test_target_change_page_never_shows_the_upstream_secret(admin, docs):
    page = admin.get(reverse("admin:gateway_target_change", args=[docs.pk])).content.decode()

    assert UPSTREAM_SECRET not in page
    assert docs.auth_secret_encrypted not in page
    assert '<div class="readonly">set</div>' in page


def test_upstream_secret_entered_in_the_admin_is_stored_encrypted(admin, acme):
    admin.post(reverse("admin:gateway_target_add"), target_form(acme, upstream_secret="new-s3cret"))

    target = Target.objects.get(slug="wiki")
    assert "new-s3cret" not in target.auth_secret_encrypted
    assert decrypt_secret(target.auth_secret_encrypted) == "new-s3cret"


def test_a_rejected_target_form_does_not_echo_the_secret_back(admin, acme):
    form = target_form(acme, upstream_url="not a url", upstream_secret="new-s3cret")

    response = admin.post(reverse("admin:gateway_target_add"), form)

    assert response.status_code == 200
    assert "Enter a valid URL." in response.content.decode()
    assert "new-s3cret" not in response.content.decode()


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ({"auth_type": "bearer"}, "An upstream secret is required for this auth type."),
        (
            {"auth_type": "header", "upstream_secret": "s"},
            "A header name is required for custom header auth.",
        ),
        ({"auth_type": "header", "auth_header_name": "Host", "upstream_secret": "s"}, "cannot carry"),
        ({"auth_type": "none", "upstream_secret": "s"}, "Choose bearer or custom header auth"),
    ],
)
def test_incomplete_upstream_auth_is_refused(admin, acme, extra, error):
    response = admin.post(reverse("admin:gateway_target_add"), target_form(acme, **extra))

    assert response.status_code == 200
    assert error in response.content.decode()
    assert not Target.objects.filter(slug="wiki").exists()


def test_leaving_the_secret_blank_keeps_the_stored_one(admin, docs):
    form = target_form(docs.tenant, slug="docs", timeout_seconds="5")

    admin.post(reverse("admin:gateway_target_change", args=[docs.pk]), form)

    target = Target.objects.get(pk=docs.pk)
    assert target.timeout_seconds == 5
    assert target.auth_secret_encrypted == docs.auth_secret_encrypted


def test_switching_to_a_custom_header_keeps_the_secret_and_sets_the_header(admin, docs):
    form = target_form(docs.tenant, slug="docs", auth_type="header", auth_header_name="X-Api-Key")

    admin.post(reverse("admin:gateway_target_change", args=[docs.pk]), form)

    target = Target.objects.get(pk=docs.pk)
    assert (target.auth_type, target.auth_header_name) == ("header", "X-Api-Key")
    assert decrypt_secret(target.auth_secret_encrypted) == UPSTREAM_SECRET


def test_switching_to_no_auth_erases_the_stored_secret(admin, docs):
    admin.post(
        reverse("admin:gateway_target_change", args=[docs.pk]),
        target_form(docs.tenant, slug="docs", auth_type="none"),
    )

    target = Target.objects.get(pk=docs.pk)
    assert (target.auth_type, target.auth_secret_encrypted) == ("none", "")


# Audit events


def test_audit_events_are_listed_but_cannot_be_added_changed_or_deleted(admin, docs):
    event = audit_event(docs)
    change_url = reverse("admin:audit_auditevent_change", args=[event.pk])

    listing = admin.get(reverse("admin:audit_auditevent_changelist")).content.decode()
    assert "POST /tools/search" in listing
    assert admin.get(reverse("admin:audit_auditevent_add")).status_code == 403
    assert admin.post(change_url, {"decision": "allowed", "status_code": "200"}).status_code == 403
    assert (
        admin.post(reverse("admin:audit_auditevent_delete", args=[event.pk]), {"post": "yes"}).status_code
        == 403
    )
    assert AuditEvent.objects.get(pk=event.pk).decision == "denied"


def test_audit_events_can_be_found_by_request_id(admin, docs):
    audit_event(docs, request_id="req-wanted")
    audit_event(docs, request_id="req-other")

    page = admin.get(reverse("admin:audit_auditevent_changelist") + "?q=req-wanted").content.decode()

    assert "1 result" in page


@pytest.mark.parametrize(
    "changelist",
    [
        "admin:gateway_tenant_changelist",
        "admin:gateway_target_changelist",
        "admin:gateway_credential_changelist",
        "admin:policies_allowrule_changelist",
        "admin:audit_auditevent_changelist",
    ],
)
def test_every_list_can_be_searched(admin, docs, changelist):
    credential = credential_create(tenant=docs.tenant, name="agent", targets=[docs], allow=[("POST", "/x")])
    audit_event(docs, credential=credential.credential)

    response = admin.get(reverse(changelist) + "?q=acme")

    assert response.status_code == 200


def credential_change_url(credential: Credential) -> str:
    return reverse("admin:gateway_credential_change", args=[credential.pk])


def run_action(admin: Client, action: str, credentials: list[Credential]) -> Any:
    data = {"action": action, "_selected_action": [credential.pk for credential in credentials]}
    return admin.post(reverse("admin:gateway_credential_changelist"), data, follow=True)


def audit_event(target: Target, **fields: Any) -> AuditEvent:
    values = {
        "created_at": timezone.now(),
        "request_id": "req-1",
        "tenant": target.tenant,
        "target": target,
        "target_slug": target.slug,
        "http_method": "POST",
        "path": f"/mcp/{target.slug}/",
        "route": "POST /tools/search",
        "decision": "denied",
        "status_code": 403,
        "latency_ms": 1.5,
        **fields,
    }
    return AuditEvent.objects.create(**values)


# JWT credentials

JWT_SECRET = "jwt-hs256-s3cret-never-displayed-" * 2


def jwt_form(tenant: Tenant, targets: list[Target], **extra: Any) -> dict[str, Any]:
    settings = {
        "kind": "jwt",
        "jwt_issuer": "https://idp.example.com/",
        "jwt_audience": "gw",
        "jwt_subject_claim": "sub",
        "jwt_subject": "agent-7",
        "jwt_leeway_seconds": "30",
        "jwt_public_key": "",
        "jwt_jwks_url": "",
        "jwt_hs256_secret": JWT_SECRET,
    }
    return credential_form(tenant, targets, **{**settings, **extra})


def test_a_jwt_credential_added_in_the_admin_keeps_its_secret_encrypted_and_never_shows_it(admin, docs):
    response = admin.post(reverse("admin:gateway_credential_add"), jwt_form(docs.tenant, [docs]), follow=True)

    credential = Credential.objects.get(name="agent")
    assert credential.is_jwt and credential.secret_hash == ""
    assert decrypt_secret(credential.jwt_hs256_secret_encrypted) == JWT_SECRET
    assert [(rule.method, rule.path) for rule in credential.rules.all()] == [("POST", "/tools/search")]
    assert "agents present JWTs from https://idp.example.com/" in " ".join(messages_of(response))
    page = admin.get(credential_change_url(credential)).content.decode()
    assert JWT_SECRET not in page and credential.jwt_hs256_secret_encrypted not in page
    assert "agent-7" in page and "HS256 secret" in page


def test_a_jwt_credential_edited_in_the_admin_keeps_a_blank_secret_and_refuses_two_key_sources(admin, docs):
    admin.post(reverse("admin:gateway_credential_add"), jwt_form(docs.tenant, [docs]))
    credential = Credential.objects.get(name="agent")
    edit = {"rules-TOTAL_FORMS": "0", "jwt_hs256_secret": ""}

    admin.post(credential_change_url(credential), jwt_form(docs.tenant, [docs], jwt_audience="other", **edit))
    credential.refresh_from_db()
    assert credential.jwt_audience == "other"
    assert decrypt_secret(credential.jwt_hs256_secret_encrypted) == JWT_SECRET

    two = jwt_form(docs.tenant, [docs], jwt_jwks_url="https://idp.example.com/jwks", **edit)
    two["jwt_hs256_secret"] = JWT_SECRET
    response = admin.post(credential_change_url(credential), two)
    assert response.status_code == 200
    assert "exactly one key source" in response.content.decode()
    assert JWT_SECRET not in response.content.decode()


def test_an_api_key_added_in_the_admin_with_jwt_settings_is_refused(admin, docs):
    form = credential_form(docs.tenant, [docs], jwt_issuer="https://idp.example.com/")

    response = admin.post(reverse("admin:gateway_credential_add"), form)

    assert "Only a JWT credential has JWT settings." in response.content.decode()
    assert not Credential.objects.exists()
