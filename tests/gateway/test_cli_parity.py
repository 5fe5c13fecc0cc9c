"""CLI parity with the API: list, show, update and delete what the gateway manages, every command with
``--json``, and errors a script can read."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management.base import CommandError
from django.utils import timezone

from audit.models import AuditEvent
from gateway.crypto import decrypt_secret
from gateway.models import Credential, Target, Tenant
from gateway.services import (
    credential_create,
    credential_deactivate,
    target_create,
    tenant_create,
    user_create,
)
from policies.models import AllowRule, Filter, RedactionPolicy
from policies.services import filter_create, redaction_policy_set
from tests.commands import run_command as run
from tests.conftest import issue_credential
from tests.gateway.test_admin import audit_event
from tests.metering.conftest import post_call

UPSTREAM = "http://127.0.0.1:9/mcp"
SECRET = "upstream-secret-0123456789"

pytestmark = pytest.mark.django_db


def run_json(line: str, *args: str) -> Any:
    return json.loads(run(line, *args, "--json"))


@pytest.fixture
def acme() -> Tenant:
    return tenant_create(name="acme")


@pytest.fixture
def docs(acme: Tenant) -> Target:
    return target_create(
        tenant=acme, slug="docs", upstream_url=UPSTREAM, auth_type="bearer", auth_secret=SECRET
    )


@pytest.fixture
def agent(docs: Target) -> Credential:
    return credential_create(
        tenant=docs.tenant, name="agent", targets=[docs], allow=[("POST", "/tools/search")]
    ).credential


# Tenants


def test_list_tenants_shows_each_tenant_with_its_targets_and_live_credentials(agent):
    tenant_create(name="globex")
    credential_deactivate(
        credential=credential_create(tenant=agent.tenant, name="old", targets=[]).credential
    )

    data = run_json("list_tenants")

    assert [(t["name"], t["targets"], t["credentials"]) for t in data["tenants"]] == [
        ("acme", 1, 1),
        ("globex", 0, 0),
    ]
    assert "acme  1 target(s), 1 credential(s)" in run("list_tenants")


def test_show_tenant_lists_its_targets_credentials_users_and_counts(agent):
    user_create(username="rosa", tenant=agent.tenant, role="reviewer", password="a-long-pass-phrase-42")
    filter_create(tenant=agent.tenant, paths=["$.owner"])

    data = run_json("show_tenant acme")

    assert data["targets"] == ["docs"]
    assert data["credentials"] == [{"id": agent.id, "name": "agent", "status": "active"}]
    assert [(u["name"], u["role"]) for u in data["users"]] == [("rosa", "reviewer")]
    assert (data["meters"], data["filters"], data["redaction_policies"]) == (0, 1, 0)


def test_delete_tenant_without_yes_says_what_would_go_and_deletes_nothing(agent):
    with pytest.raises(CommandError, match=r"also deletes its 1 target\(s\) and 1 credential\(s\).*--yes"):
        run("delete_tenant acme")

    assert Tenant.objects.filter(name="acme").exists()


def test_delete_tenant_with_yes_deletes_it_and_everything_it_owns(agent):
    data = run_json("delete_tenant acme --yes")

    assert data == {"id": agent.tenant_id, "name": "acme", "deleted": True}
    assert not Tenant.objects.exists() and not Target.objects.exists() and not Credential.objects.exists()
    # The change log names each cascaded row with its scope, read before its parents were gone.
    changes = AuditEvent.objects.filter(kind="change", reason__startswith="allowrule ")
    [rule_deleted] = changes.filter(reason__contains=" deleted by ")
    assert (rule_deleted.tenant_id, rule_deleted.credential_id) == (agent.tenant_id, agent.id)
    assert "deleted by cli:" in rule_deleted.reason


def test_a_tenant_whose_credentials_the_audit_trail_names_is_not_deleted(agent):
    audit_event(agent.targets.get(), credential=agent)

    with pytest.raises(
        CommandError, match="Tenant 'acme' cannot be deleted: audit events refer to its credentials agent"
    ):
        run("delete_tenant acme --yes")

    assert Credential.objects.filter(pk=agent.pk).exists() and Target.objects.exists()


# Targets


def test_list_and_show_target_never_print_the_upstream_secret(agent):
    listing = run_json("list_targets --tenant acme")
    shown = run_json("show_target docs")
    text = run("list_targets") + run("show_target docs")

    assert [t["slug"] for t in listing["targets"]] == ["docs"]
    assert listing["targets"][0]["upstream_secret"] == "set"
    assert shown["credentials"] == [{"id": agent.id, "name": "agent", "status": "active"}]
    assert shown["tools"] == {"approved": 0, "pending": 0, "changed": 0}
    assert SECRET not in json.dumps(listing) + json.dumps(shown) + text


def test_update_target_changes_only_what_is_given(docs):
    data = run_json(
        "update_target docs --upstream http://127.0.0.1:9100/mcp --timeout 5 --allowed-origin "
        "https://app.example.com --hold-new-tools --no-argument-validation --trusted-url-host Docs.Example.com"
    )

    docs.refresh_from_db()
    assert (docs.upstream_url, docs.timeout_seconds) == ("http://127.0.0.1:9100/mcp", 5.0)
    assert docs.allowed_origin_list() == ["https://app.example.com"]
    assert (docs.hold_new_tools, docs.validate_arguments) == (True, False)
    assert docs.trusted_url_hosts == "docs.example.com"
    assert decrypt_secret(docs.auth_secret_encrypted) == SECRET  # untouched
    assert data["upstream_url"] == "http://127.0.0.1:9100/mcp" and data["upstream_secret"] == "set"

    run("update_target docs --allowed-origin '' --argument-validation")
    docs.refresh_from_db()
    assert docs.allowed_origin_list() == [] and docs.validate_arguments and docs.hold_new_tools


def test_update_target_replaces_the_upstream_secret_from_a_file_and_never_prints_it(docs, tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text("X-Api-Key: brand-new-secret\n")

    output = run("update_target docs --upstream-header-file", str(secret_file))

    docs.refresh_from_db()
    assert (docs.auth_type, docs.auth_header_name) == ("header", "X-Api-Key")
    assert decrypt_secret(docs.auth_secret_encrypted) == "brand-new-secret"
    assert "brand-new-secret" not in output and "Updated target 'docs'" in output

    run("update_target docs --no-upstream-auth")
    docs.refresh_from_db()
    assert (docs.auth_type, docs.auth_secret_encrypted) == ("none", "")


def test_update_target_with_nothing_to_change_says_what_it_takes(docs):
    with pytest.raises(CommandError, match="Nothing to change: give at least one of --upstream, --timeout"):
        run("update_target docs")


def test_update_target_refuses_an_upstream_the_ssrf_policy_forbids_and_keeps_the_old_one(docs):
    with pytest.raises(CommandError, match=r"upstream_url: .*169\.254\.169\.254"):
        run("update_target docs --upstream http://169.254.169.254/latest/meta-data/")

    docs.refresh_from_db()
    assert docs.upstream_url == UPSTREAM


def test_delete_target_removes_it_and_unbinds_its_credentials(agent):
    data = run_json("delete_target docs")

    assert data["deleted"] is True and not Target.objects.exists()
    assert list(Credential.objects.get(pk=agent.pk).targets.all()) == []


# Credentials


def test_list_credentials_hides_deactivated_ones_unless_all_is_asked(agent):
    old = credential_create(tenant=agent.tenant, name="old", targets=[]).credential
    credential_deactivate(credential=old)

    shown = run_json("list_credentials --tenant acme")
    everything = run_json("list_credentials --all")

    assert [c["name"] for c in shown["credentials"]] == ["agent"]
    assert [(c["name"], c["status"]) for c in everything["credentials"]] == [
        ("agent", "active"),
        ("old", "deactivated"),
    ]
    assert shown["credentials"][0]["targets"] == ["docs"]
    assert "token" not in shown["credentials"][0] and "secret_hash" not in shown["credentials"][0]


def test_show_credential_lists_its_rules_in_order_and_its_meters(agent):
    run("add_rule --credential", str(agent.id), "GET /resources/**", "--description", "read docs")
    run(f"create_meter --tenant acme --credential {agent.id} --kind request_count --window minute --limit 60")

    data = run_json("show_credential", str(agent.id))
    text = run("show_credential", str(agent.id))

    assert [(r["method"], r["path"]) for r in data["rules"]] == [
        ("POST", "/tools/search"),
        ("GET", "/resources/**"),
    ]
    assert [(m["kind"], m["limit"], m["window"]) for m in data["meters"]] == [("request_count", 60, "minute")]
    assert "GET /resources/**  'read docs'" in text


def test_update_credential_renames_it_changes_expiry_and_rebinds_targets(agent, acme):
    wiki = target_create(tenant=acme, slug="wiki", upstream_url=UPSTREAM)

    data = run_json("update_credential", str(agent.id), "--name", "agent-2", "--expires-in", "3600")
    agent.refresh_from_db()
    assert agent.name == data["name"] == "agent-2"
    assert agent.expires_at is not None
    assert timedelta(minutes=59) < agent.expires_at - timezone.now() <= timedelta(hours=1)

    data = run_json("update_credential", str(agent.id), "--no-expiry", "--target", "wiki")
    assert data["expires_at"] is None and data["targets"] == ["wiki"]
    assert list(agent.targets.all()) == [wiki]
    assert agent.rules.count() == 1  # rules stay


def test_update_credential_refuses_a_target_of_another_tenant(agent):
    other = target_create(tenant=tenant_create(name="globex"), slug="theirs", upstream_url=UPSTREAM)

    with pytest.raises(CommandError, match="Target 'theirs' belongs to another tenant"):
        run("update_credential", str(agent.id), "--target", other.slug)

    assert [t.slug for t in agent.targets.all()] == ["docs"]


def test_update_credential_refuses_a_name_the_tenant_already_uses(agent):
    credential_create(tenant=agent.tenant, name="taken", targets=[])

    with pytest.raises(CommandError, match="already exists in this tenant"):
        run("update_credential", str(agent.id), "--name", "taken")


def test_a_deactivated_credential_cannot_be_updated(agent):
    credential_deactivate(credential=agent)

    with pytest.raises(CommandError, match=r"deactivated credential .* cannot be changed"):
        run("update_credential", str(agent.id), "--name", "again")


# Rules


def test_add_rule_appends_a_rule_and_delete_rule_removes_it(agent):
    added = run_json("add_rule --credential", str(agent.id), "get /resources/*")
    listed = run_json("list_rules --credential", str(agent.id))

    assert (added["method"], added["path"]) == ("GET", "/resources/*")
    assert [r["id"] for r in listed["rules"]][-1] == added["id"]

    deleted = run_json("delete_rule", str(added["id"]))
    assert deleted["deleted"] is True
    assert list(AllowRule.objects.filter(credential=agent).values_list("path", flat=True)) == [
        "/tools/search"
    ]


def test_add_rule_refuses_a_malformed_route(agent):
    with pytest.raises(CommandError, match="The route must be 'METHOD /path'"):
        run("add_rule --credential", str(agent.id), "tools/search")


def test_list_rules_of_a_credential_without_rules_says_everything_is_denied(docs):
    bare = credential_create(tenant=docs.tenant, name="bare", targets=[docs]).credential

    assert "has no rule: every call is denied" in run("list_rules --credential", str(bare.id))


# Filters and redaction policies


def test_filters_are_listed_in_stack_order_and_deleted_by_id(agent):
    own = filter_create(tenant=agent.tenant, credential=agent, paths=["$.secret"])
    tenant_wide = filter_create(tenant=agent.tenant, paths=["$.owner"], mode="monitor")

    data = run_json("list_filters --tenant acme")
    assert [(f["id"], f["paths"]) for f in data["filters"]] == [
        (tenant_wide.id, ["$.owner"]),
        (own.id, ["$.secret"]),
    ]
    assert f"filter {own.id} (credential {agent.id}): $.secret [enforce]" in run("list_filters")

    deleted = run_json("delete_filter", str(own.id))
    assert (deleted["id"], deleted["credential_id"], deleted["paths"], deleted["deleted"]) == (
        own.id,
        agent.id,
        ["$.secret"],
        True,
    )
    assert list(Filter.objects.values_list("id", flat=True)) == [tenant_wide.id]


def test_redaction_policies_are_listed_and_deleted_by_id(docs):
    row = redaction_policy_set(tenant=docs.tenant, target=docs, detectors=["email"], action="mask")

    data = run_json("list_redactions")
    assert data["redaction_policies"] == [
        {
            "id": row.id,
            "tenant": "acme",
            "target": "docs",
            "credential_id": None,
            "route": "",
            "mode": "enforce",
            "order": 0,
            "detectors": ["email"],
            "action": "mask",
        }
    ]

    assert (
        run("delete_redaction", str(row.id)).strip()
        == f"Deleted redaction policy {row.id} (target docs): mask email."
    )
    assert not RedactionPolicy.objects.exists()


@pytest.mark.parametrize(
    ("command", "what"),
    [
        ("delete_filter", "filter"),
        ("delete_redaction", "redaction policy"),
        ("delete_rule", "rule"),
        ("show_credential", "credential"),
    ],
)
def test_an_unknown_id_is_a_clear_error(command, what):
    with pytest.raises(CommandError, match=f"No {what} with id '9999'"):
        run(command, "9999")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("list_targets --tenant nope", "No tenant named 'nope'"),
        ("list_users --tenant nope", "No tenant named 'nope'"),
        ("list_filters --tenant nope", "No tenant named 'nope'"),
        ("list_redactions --tenant nope", "No tenant named 'nope'"),
        ("list_credentials --target ghost", "No target with slug 'ghost'"),
        ("list_meters --credential 9999", "No credential with id '9999'"),
    ],
)
def test_a_list_narrowed_to_something_unknown_is_a_clear_error(line, message):
    with pytest.raises(CommandError, match=message):
        run(line)


# Users


def test_list_users_shows_each_users_tenant_role(acme):
    user_create(username="alice", tenant=acme, role="admin", password="a-long-pass-phrase-42")
    User.objects.create_superuser("root", password="x")
    User.objects.create_user("nobody", is_staff=True)

    data = run_json("list_users")
    only_acme = run_json("list_users --tenant acme")
    text = run("list_users")

    assert [(u["name"], u["tenant"], u["role"], u["superuser"]) for u in data["users"]] == [
        ("alice", "acme", "admin", False),
        ("nobody", None, None, False),
        ("root", None, None, True),
    ]
    assert [u["name"] for u in only_acme["users"]] == ["alice"]
    assert "root  superuser (every tenant)" in text
    assert "nobody  no tenant role (reaches no tenant)" in text
    assert "password" not in json.dumps(data)


# Through the proxy


def test_rules_changed_on_the_command_line_decide_the_next_call(gateway, tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/search")
    [rule] = issued.credential.rules.all()
    url = gateway.proxy_url("docs")
    assert post_call(url, issued.token).status_code == 200

    run("delete_rule", str(rule.id))
    refused = post_call(url, issued.token, request_id=2).json()["error"]
    assert refused["message"].startswith("Denied by policy: no rule allows POST /tools/search")

    run("add_rule --credential", str(issued.credential.id), "POST /tools/*")
    assert post_call(url, issued.token, request_id=3).status_code == 200

    run("update_credential", str(issued.credential.id), "--expires-at", "2020-01-01")
    assert post_call(url, issued.token, request_id=4).status_code == 401
