"""Tenant roles in the admin: a tenant admin or reviewer of tenant A never sees, reaches or changes
anything of tenant B, and a reviewer changes nothing at all."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.contrib import admin as django_admin
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent, AuditExport
from audit.retention import audit_retention_set
from audit.siem.services import siem_sink_create
from gateway.models import Target, Tenant, TenantMembership
from gateway.oauth.services import oauth_client_create
from gateway.services import (
    allow_rule_create,
    credential_create,
    target_create,
    tenant_create,
    user_create,
)
from metering.models import UsageRollup
from metering.services import meter_create
from policies.services import filter_create, redaction_policy_set
from tests.commands import run_command
from tests.factories import listed
from tests.gateway.test_admin import audit_event

UPSTREAM = "http://127.0.0.1:9/mcp"
PASSWORD = "a-long-enough-test-password-1"


def populate(name: str) -> dict[str, Any]:
    """One object of every tenant-owned kind the admin shows, all named after ``name``."""
    tenant = tenant_create(name=name)
    target = target_create(tenant=tenant, slug=f"{name}-docs", upstream_url=UPSTREAM)
    issued = credential_create(tenant=tenant, name=f"{name}-agent", targets=[target])
    credential = issued.credential
    rule = allow_rule_create(credential=credential, method="POST", path=f"/tools/{name}-search")
    meter = meter_create(tenant=tenant, credential=credential, kind="request_count", window="minute", limit=5)
    rows = {
        "tenant": tenant,
        "target": target,
        "credential": credential,
        "allowrule": rule,
        "meter": meter,
        "filter": filter_create(tenant=tenant, paths=[f"$.{name}_secret"]),
        "redactionpolicy": redaction_policy_set(tenant=tenant, detectors=["email"], action="mask"),
        "pinnedtool": listed(target, f"{name}-search"),
        "auditevent": audit_event(target, credential=credential, credential_name=credential.name),
        "usagerollup": UsageRollup.objects.create(
            period="hour", period_start=timezone.now(), tenant=tenant, target=target, tool=f"{name}-search"
        ),
        "siemsink": siem_sink_create(
            tenant=tenant, name=f"{name}-siem", kind="syslog", settings={"host": f"logs.{name}.example"}
        ),
        "auditsettings": audit_retention_set(tenant=tenant, days=30),
        "oauthclient": oauth_client_create(credential=credential, grant="client_credentials").binding,
        "auditexport": AuditExport.objects.create(
            tenant=tenant,
            requested_by=f"{name}-reviewer",
            requested_at=timezone.now(),
            since=timezone.now() - timedelta(days=1),
            until=timezone.now(),
            format=AuditExport.Format.CSV,
        ),
    }
    return rows


def member(client: Client, tenant: Tenant, role: str, name: str) -> Client:
    created = user_create(username=name, tenant=tenant, role=role, password=PASSWORD)
    client.force_login(created.user)
    return client


@pytest.fixture
def tenants(db: None) -> tuple[dict[str, Any], dict[str, Any]]:
    return populate("acme"), populate("globex")


@pytest.fixture
def acme_admin(tenants: Any) -> Client:
    return member(Client(), tenants[0]["tenant"], "admin", "alice")


@pytest.fixture
def acme_reviewer(tenants: Any) -> Client:
    return member(Client(), tenants[0]["tenant"], "reviewer", "rita")


def change_url(obj: Any) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def changelist_url(obj: Any) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_changelist")


@pytest.mark.parametrize("role", ["admin", "reviewer"])
def test_no_page_of_another_tenant_is_reachable(tenants, role):
    # given a member of acme, and one object of every kind in globex
    acme, globex = tenants
    client = member(Client(), acme["tenant"], role, f"{role}-of-acme")
    for kind, obj in globex.items():
        if type(obj) not in django_admin.site._registry:
            continue  # an OAuth client has no page of its own: its credential's page shows it
        # then globex's object pages are not found (never a redirect that tells they exist)
        for url in (change_url(obj), change_url(obj).replace("/change/", "/delete/"),
                    change_url(obj).replace("/change/", "/history/")):  # fmt: skip
            status = client.get(url).status_code
            assert status in (403, 404), f"{role} reached {kind} of another tenant at {url}: {status}"
        # and no list shows them, nor names them in a filter
        listing = client.get(changelist_url(obj))
        if listing.status_code == 200:
            assert "globex" not in listing.content.decode(), f"{kind} list leaks the other tenant"


def test_every_registered_model_is_confined_to_the_users_tenant():
    # Every admin page of the gateway's apps is tenant-scoped: a new admin that forgets fails here.
    from gateway.tenant_admin import TenantScopedAdmin

    ours = {"gateway", "policies", "metering", "audit"}
    unscoped = [
        model._meta.label
        for model, model_admin in django_admin.site._registry.items()
        if model._meta.app_label in ours and not isinstance(model_admin, TenantScopedAdmin)
    ]
    assert unscoped == []


def test_a_tenant_admin_manages_its_own_tenant(tenants, acme_admin):
    acme, _ = tenants
    # sees its own objects
    listing = acme_admin.get(reverse("admin:gateway_target_changelist")).content.decode()
    assert "acme-docs" in listing
    # and changes them
    response = acme_admin.post(
        reverse("admin:gateway_tenant_change", args=[acme["tenant"].pk]),
        {"name": "acme-renamed", **empty_meters()},
    )
    assert response.status_code == 302, response.content[:2000]
    assert Tenant.objects.get(pk=acme["tenant"].pk).name == "acme-renamed"


def test_a_tenant_admin_cannot_create_objects_in_another_tenant(tenants, acme_admin):
    _, globex = tenants
    response = acme_admin.post(
        reverse("admin:gateway_target_add"),
        {
            "tenant": globex["tenant"].pk,
            "slug": "planted",
            "kind": "mcp",
            "upstream_url": UPSTREAM,
            "auth_type": "none",
            "timeout_seconds": "30",
            "validate_arguments": "on",
            **empty_meters(),
        },
    )
    assert response.status_code == 200  # the form again, with the error
    assert "Select a valid choice" in response.content.decode()
    assert not Target.objects.filter(slug="planted").exists()


def test_a_tenant_admin_neither_creates_nor_deletes_tenants_nor_manages_users(tenants, acme_admin):
    acme, _ = tenants
    assert acme_admin.get(reverse("admin:gateway_tenant_add")).status_code == 403
    assert acme_admin.get(reverse("admin:gateway_tenant_delete", args=[acme["tenant"].pk])).status_code == 403
    assert acme_admin.get(reverse("admin:gateway_tenantmembership_changelist")).status_code == 403
    assert acme_admin.get(reverse("admin:auth_user_changelist")).status_code == 403


def test_a_reviewer_reads_its_tenants_audit_trail_and_usage(tenants, acme_reviewer):
    acme, _ = tenants
    events = acme_reviewer.get(reverse("admin:audit_auditevent_changelist"))
    assert events.status_code == 200
    assert "acme-agent" in events.content.decode()
    assert "globex-agent" not in events.content.decode()
    assert acme_reviewer.get(change_url(acme["auditevent"])).status_code == 200
    assert acme_reviewer.get(changelist_url(acme["usagerollup"])).status_code == 200


def test_a_reviewer_changes_nothing(tenants, acme_reviewer):
    acme, _ = tenants
    for kind in ("tenant", "target", "credential", "allowrule", "meter", "filter", "pinnedtool"):
        obj = acme[kind]
        assert acme_reviewer.get(change_url(obj)).status_code == 403, kind
        assert acme_reviewer.get(changelist_url(obj)).status_code == 403, kind
    response = acme_reviewer.post(
        reverse("admin:gateway_tenant_change", args=[acme["tenant"].pk]), {"name": "renamed"}
    )
    assert response.status_code == 403
    assert Tenant.objects.get(pk=acme["tenant"].pk).name == "acme"


def test_events_of_no_tenant_are_shown_to_superusers_only(tenants, acme_admin):
    acme, _ = tenants
    AuditEvent.objects.create(**{**event_fields(acme["target"]), "tenant": None, "target": None,
                                 "credential_name": "nobody-knows"})  # fmt: skip
    listing = acme_admin.get(reverse("admin:audit_auditevent_changelist")).content.decode()
    assert "nobody-knows" not in listing


def test_a_user_without_membership_reaches_no_tenant(tenants, django_user_model):
    user = django_user_model.objects.create_user("drifter", password=PASSWORD, is_staff=True)
    client = Client()
    client.force_login(user)
    assert client.get(reverse("admin:gateway_target_changelist")).status_code == 403
    assert client.get(reverse("admin:audit_auditevent_changelist")).status_code == 403


def test_create_user_makes_a_reviewer_who_can_sign_in(tenants):
    data = json.loads(run_command("create_user rosa --tenant acme --role reviewer --json"))
    assert data["role"] == "reviewer" and data["tenant"] == "acme"
    membership = TenantMembership.objects.get(user__username="rosa")
    assert membership.role == "reviewer" and membership.user.is_staff and not membership.user.is_superuser
    client = Client()
    signed_in = client.post("/admin/login/?next=/admin/", {"username": "rosa", "password": data["password"]})
    assert signed_in.status_code == 302 and signed_in["Location"] == "/admin/"
    assert client.get(reverse("admin:audit_auditevent_changelist")).status_code == 200


def test_create_user_refuses_an_unknown_tenant_and_a_taken_name(tenants):
    run_command("create_user rosa --tenant acme --role admin")
    with pytest.raises(CommandError, match="A user named 'rosa' already exists"):
        run_command("create_user rosa --tenant acme --role admin")
    with pytest.raises(CommandError, match="No tenant named 'nope'"):
        run_command("create_user x --tenant nope --role admin")


def event_fields(target: Target) -> dict[str, Any]:
    return {
        "created_at": timezone.now(),
        "request_id": "req-x",
        "tenant": target.tenant,
        "target": target,
        "http_method": "POST",
        "path": "/",
        "decision": "allowed",
        "status_code": 200,
        "latency_ms": 1.0,
    }


def empty_meters() -> dict[str, str]:
    """The meters inline's management form with no rows."""
    counts = {"TOTAL_FORMS": "0", "INITIAL_FORMS": "0", "MIN_NUM_FORMS": "0", "MAX_NUM_FORMS": "1000"}
    return {f"meters-{suffix}": value for suffix, value in counts.items()}
