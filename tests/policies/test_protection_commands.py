"""The operator's commands for response protection: create_filter and set_redaction."""

from __future__ import annotations

import json

import pytest
from django.core.management.base import CommandError

from gateway.services import target_create, tenant_create
from policies.models import Filter, RedactionPolicy
from tests.commands import run_command as run
from tests.conftest import issue_credential

pytestmark = pytest.mark.django_db


@pytest.fixture
def docs():
    tenant = tenant_create(name="acme")
    return tenant, target_create(tenant=tenant, slug="docs", upstream_url="http://127.0.0.1:9/mcp")


def test_create_filter_prints_the_filter_it_created(docs):
    data = json.loads(run("create_filter --tenant acme --target docs --path $..id --path $.owner --json"))
    row = Filter.objects.get()
    assert data["id"] == row.pk and data["target"] == "docs" and data["paths"] == ["$..id", "$.owner"]
    assert data["mode"] == "enforce"
    assert "Created filter" in run(
        "create_filter --tenant acme --route 'POST /tools/*' --path $.x --mode monitor"
    )


def test_create_filter_refuses_a_bad_path_with_the_parser_message(docs):
    with pytest.raises(CommandError, match="document root"):
        run("create_filter --tenant acme --path owner")
    assert not Filter.objects.exists()


def test_a_credential_of_another_tenant_is_refused(docs):
    other = tenant_create(name="other")
    issued = issue_credential(other, None)
    with pytest.raises(CommandError, match="another tenant"):
        run(f"create_filter --tenant acme --credential {issued.credential.pk} --path $.id")


def test_set_redaction_twice_on_one_scope_updates_the_policy(docs):
    first = json.loads(run("set_redaction --tenant acme --detectors email,card --action mask --json"))
    second = json.loads(run("set_redaction --tenant acme --detectors all --action pseudonym --json"))
    assert first["id"] == second["id"] and RedactionPolicy.objects.count() == 1
    assert second["action"] == "pseudonym" and second["detectors"] == ["all"]


def test_set_redaction_names_the_valid_detectors_for_an_unknown_one(docs):
    with pytest.raises(CommandError, match="valid names"):
        run("set_redaction --tenant acme --detectors passport --action mask")


@pytest.fixture
def admin(client, django_user_model):
    user = django_user_model.objects.create_superuser("root", "root@example.com", "unused-password")
    client.force_login(user)
    return client


def test_the_admin_lists_filters_and_redaction_policies_with_scope_order_and_mode(admin, docs):
    run("create_filter --tenant acme --target docs --path $..id --mode monitor")
    run("set_redaction --tenant acme --detectors email --action mask")
    filters = admin.get("/admin/policies/filter/").content.decode()
    assert "target " in filters and "monitor" in filters and "$..id" in filters
    policies = admin.get("/admin/policies/redactionpolicy/").content.decode()
    assert "tenant " in policies and "mask" in policies


def test_the_admin_refuses_a_filter_with_a_bad_path(admin, docs):
    tenant, _ = docs
    form = {"tenant": tenant.pk, "route": "", "paths": '["owner"]', "mode": "enforce", "order": 0}
    response = admin.post("/admin/policies/filter/add/", form)
    assert response.status_code == 200 and "document root" in response.content.decode()
    assert not Filter.objects.exists()
