"""The change log: who changed which configuration object, from where, and what changed, in the
sealed audit trail, with secrets never written."""

from __future__ import annotations

import getpass
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_seal_run, audit_verify
from gateway.models import Credential, Target, Tenant
from gateway.services import allow_rule_create, credential_create, target_create, tenant_create
from metering.models import UsageRollup
from metering.services import usage_rollup_run
from policies.models import AllowRule, Filter, RedactionPolicy
from policies.services import filter_create
from tests.commands import run_command

UPSTREAM = "http://127.0.0.1:9/mcp"
OLD_SECRET = "old-upstream-s3cret-value"
NEW_SECRET = "new-upstream-s3cret-value"

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(client: Client, django_user_model: type[User]) -> Client:
    user = django_user_model.objects.create_superuser("root", "root@example.com", "unused-password")
    client.force_login(user)
    return client


@pytest.fixture
def acme() -> Tenant:
    return tenant_create(name="acme")


@pytest.fixture
def docs(acme: Tenant) -> Target:
    return target_create(
        tenant=acme, slug="docs", upstream_url=UPSTREAM, auth_type="bearer", auth_secret=OLD_SECRET
    )


def changes_of(object_type: str, **filters: Any) -> list[AuditEvent]:
    events = AuditEvent.objects.filter(kind=AuditEvent.Kind.CHANGE, details__object_type=object_type)
    return list(events.filter(**filters).order_by("id"))


def last_change(object_type: str) -> dict[str, Any]:
    return changes_of(object_type)[-1].details


def test_a_rule_changed_in_the_admin_is_logged_with_the_user_and_the_diff(admin, docs):
    # given
    credential = credential_create(tenant=docs.tenant, name="agent", targets=[docs]).credential
    rule = allow_rule_create(credential=credential, method="POST", path="/tools/search")
    url = reverse("admin:policies_allowrule_change", args=[rule.pk])
    form = {"credential": credential.pk, "method": "post", "path": "/tools/*", "description": "", "order": 0}

    # when
    response = admin.post(url, form)

    # then
    assert response.status_code == 302
    [event] = changes_of("allowrule", details__action="update")
    assert (event.details["actor"], event.details["source"]) == ("root", "admin")
    assert event.details["changes"] == {"path": {"before": "/tools/search", "after": "/tools/*"}}
    assert (event.tenant_id, event.credential_id) == (docs.tenant_id, credential.pk)
    assert event.details["object_id"] == rule.pk and "root (admin)" in event.reason


def test_a_rule_changed_with_the_cli_is_logged_as_the_os_user(docs):
    run_command("set_redaction --tenant acme --target docs --detectors email --action mask")

    run_command("set_redaction --tenant acme --target docs --detectors email,card --action drop")

    [created, changed] = changes_of("redactionpolicy")
    assert created.details["action"] == "create" and changed.details["action"] == "update"
    assert changed.details["actor"] == f"cli:{getpass.getuser()}"
    assert changed.details["source"] == "cli"
    assert changed.details["changes"] == {
        "detectors": {"before": ["email"], "after": ["email", "card"]},
        "action": {"before": "mask", "after": "drop"},
    }
    assert changed.target_id == docs.pk and changed.tenant_id == docs.tenant_id


def test_a_new_upstream_secret_shows_changed_and_never_the_secret(admin, docs):
    url = reverse("admin:gateway_target_change", args=[docs.pk])
    form = {
        "tenant": docs.tenant_id,
        "slug": "docs",
        "kind": "mcp",
        "upstream_url": UPSTREAM,
        "timeout_seconds": "30",
        "allowed_origins": "",
        "auth_type": "bearer",
        "auth_header_name": "",
        "upstream_secret": NEW_SECRET,
        "validate_arguments": "on",
        "meters-TOTAL_FORMS": "0",
        "meters-INITIAL_FORMS": "0",
        "meters-MIN_NUM_FORMS": "0",
        "meters-MAX_NUM_FORMS": "1000",
    }

    assert admin.post(url, form).status_code == 302

    [created, changed] = changes_of("target")
    assert created.details["changes"]["auth_secret_encrypted"] == {"after": "set"}
    assert changed.details["changes"] == {"auth_secret_encrypted": {"before": "set", "after": "changed"}}
    stored = Target.objects.get(pk=docs.pk).auth_secret_encrypted
    for event in (created, changed):
        text = str(AuditEvent.objects.filter(pk=event.pk).values().get())
        assert OLD_SECRET not in text and NEW_SECRET not in text and stored not in text


def test_a_rotated_token_is_logged_without_its_hash(docs):
    credential = credential_create(tenant=docs.tenant, name="agent", targets=[docs]).credential
    old_hash = credential.secret_hash

    run_command(f"rotate_credential {credential.pk}")

    changed = last_change("credential")
    new = Credential.objects.get(pk=credential.pk)
    assert changed["changes"]["secret_hash"] == {"before": "set", "after": "changed"}
    assert changed["changes"]["prefix"] == {"before": credential.prefix, "after": new.prefix}
    text = str(AuditEvent.objects.filter(kind="change").values_list("details", flat=True)[::1])
    assert old_hash not in text and new.secret_hash not in text


def test_re_encrypting_under_a_new_key_is_not_a_change(docs):
    before = len(changes_of("target"))

    run_command("rotate_encryption_keys")

    assert len(changes_of("target")) == before


def test_deleting_a_filter_in_the_admin_is_logged_with_what_it_was(admin, docs):
    row = filter_create(tenant=docs.tenant, target=docs, paths=["$..email"])
    url = reverse("admin:policies_filter_delete", args=[row.pk])

    assert admin.post(url, {"post": "yes"}).status_code == 302

    assert not Filter.objects.exists()
    deleted = changes_of("filter", details__action="delete")[0]
    assert deleted.details["object_id"] == row.pk and deleted.details["actor"] == "root"
    assert deleted.details["changes"]["paths"] == {"before": ["$..email"]}
    assert deleted.target_id == docs.pk


def test_deleting_a_target_logs_what_went_with_it(docs):
    credential = credential_create(tenant=docs.tenant, name="agent", targets=[docs]).credential
    filter_create(tenant=docs.tenant, target=docs, paths=["$.x"])

    docs.delete()

    assert changes_of("target", details__action="delete")[0].details["source"] == "system"
    assert changes_of("filter", details__action="delete")[0].details["actor"] == "unknown"
    assert Credential.objects.filter(pk=credential.pk).exists()


def test_a_change_made_outside_admin_and_cli_is_logged_as_system(acme):
    [event] = changes_of("tenant")

    assert (event.details["actor"], event.details["source"]) == ("unknown", "system")
    assert event.tenant_id == acme.pk and event.details["changes"]["name"] == {"after": "acme"}


def test_saving_without_changes_logs_nothing(docs):
    before = AuditEvent.objects.count()

    Target.objects.get(pk=docs.pk).save()

    assert AuditEvent.objects.count() == before


def test_change_log_entries_are_sealed_and_verify(admin, docs):
    credential = credential_create(tenant=docs.tenant, name="agent", targets=[docs]).credential
    rule = allow_rule_create(credential=credential, method="POST", path="/tools/search")
    form = {"credential": credential.pk, "method": "POST", "path": "/tools/x", "description": "", "order": 0}
    admin.post(reverse("admin:policies_allowrule_change", args=[rule.pk]), form)

    audit_seal_run()

    assert not AuditEvent.objects.filter(kind="change", seal__isnull=True).exists()
    assert AuditEvent.objects.filter(kind="change", tenant=docs.tenant).count() >= 4
    assert all(report.ok for report in audit_verify())


def test_usage_rollups_do_not_count_changes(docs):
    credential = credential_create(tenant=docs.tenant, name="agent", targets=[docs]).credential
    RedactionPolicy.objects.create(tenant=docs.tenant, detectors=["email"])
    AllowRule.objects.filter(credential=credential).delete()

    usage_rollup_run(now=timezone.now())

    assert AuditEvent.objects.filter(kind="change", tenant=docs.tenant).exists()
    assert not UsageRollup.objects.exists()


def test_the_audit_admin_filters_changes_and_shows_the_diff(admin, docs):
    run_command("set_redaction --tenant acme --detectors email --action mask")
    run_command("set_redaction --tenant acme --detectors card --action mask")
    changed = changes_of("redactionpolicy", details__action="update")[0]

    listing = admin.get(reverse("admin:audit_auditevent_changelist"), {"kind__exact": "change"})
    page = admin.get(reverse("admin:audit_auditevent_change", args=[changed.pk])).content.decode()

    assert listing.status_code == 200
    assert {event.kind for event in listing.context["cl"].result_list} == {"change"}
    assert "<td>detectors</td><td>[&quot;email&quot;]</td><td>[&quot;card&quot;]</td>" in page
