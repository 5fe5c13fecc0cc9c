"""``check_access``: would a call be allowed, and which rule decides?"""

from __future__ import annotations

import json
import re
import shlex
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from gateway.models import Credential, Target, Tenant
from gateway.services import (
    allow_rule_create,
    credential_create,
    credential_revoke,
    target_create,
    tenant_create,
)


def check(line: str) -> str:
    out = StringIO()
    call_command("check_access", *shlex.split(line), stdout=out)
    return out.getvalue()


def check_json(line: str) -> dict[str, Any]:
    return json.loads(check(f"{line} --json"))


@pytest.fixture
def docs(db: None) -> Target:
    tenant: Tenant = tenant_create(name="acme")
    return target_create(tenant=tenant, slug="docs", upstream_url="http://127.0.0.1:9/mcp")


@pytest.fixture
def agent(docs: Target) -> Credential:
    credential = credential_create(tenant=docs.tenant, name="agent", targets=[docs]).credential
    allow_rule_create(
        credential=credential, method="POST", path="/tools/search", description="Search the docs"
    )
    allow_rule_create(credential=credential, method="GET", path="/resources/**")
    return credential


def test_unmatched_route_is_denied_by_default(agent):
    data = check_json(f"--credential {agent.id} 'POST /tools/delete'")

    assert data["decisions"] == [
        {
            "decision": "denied",
            "route": "POST /tools/delete",
            "rule": None,
            "reason": "no rule allows POST /tools/delete (deny by default)",
        }
    ]


def test_matched_route_names_the_rule_that_allowed_it(agent):
    rule = agent.rules.get(path="/tools/search")

    data = check_json(f"--credential {agent.id} 'POST /tools/search'")

    assert data["decisions"][0]["decision"] == "allowed"
    assert data["decisions"][0]["rule"] == {
        "id": rule.id,
        "method": "POST",
        "path": "/tools/search",
        "description": "Search the docs",
    }


def test_text_output_names_the_deciding_rule_and_the_denial(agent):
    rule = agent.rules.get(path="/tools/search")

    output = check(f"--credential {agent.id} 'POST /tools/search' 'POST /tools/delete'")

    assert f"Credential {agent.id} 'agent' (tenant 'acme') is active." in output
    assert f"allowed  POST /tools/search  - by rule {rule.id}: POST /tools/search 'Search the docs'" in output
    assert "denied   POST /tools/delete  - no rule allows POST /tools/delete (deny by default)" in output


def test_several_routes_are_decided_in_the_order_given(agent):
    data = check_json(
        f"--credential {agent.id} 'GET /resources/a/b' 'post /tools/search' 'GET /tools/search'"
    )

    assert [(d["route"], d["decision"]) for d in data["decisions"]] == [
        ("GET /resources/a/b", "allowed"),
        ("POST /tools/search", "allowed"),
        ("GET /tools/search", "denied"),
    ]


def test_the_first_matching_rule_in_order_decides(docs):
    credential = credential_create(tenant=docs.tenant, name="agent", targets=[docs]).credential
    broad = allow_rule_create(credential=credential, method="POST", path="/tools/*", order=0)
    allow_rule_create(credential=credential, method="POST", path="/tools/search", order=1)

    data = check_json(f"--credential {credential.id} 'POST /tools/search'")

    assert data["decisions"][0]["rule"]["id"] == broad.id


def test_revoked_credential_is_reported_and_refused_whatever_its_rules(agent):
    credential_revoke(credential=agent)

    data = check_json(f"--credential {agent.id} 'POST /tools/search'")
    output = check(f"--credential {agent.id} 'POST /tools/search'")

    assert data["credential"]["status"] == "revoked"
    assert data["decisions"][0]["decision"] == "denied"
    assert data["decisions"][0]["reason"] == "credential is revoked"
    assert "is revoked since" in output
    assert "every call is refused" in output


def test_expired_credential_is_reported_and_refused_whatever_its_rules(agent):
    Credential.objects.filter(pk=agent.pk).update(expires_at=timezone.now() - timedelta(minutes=1))

    data = check_json(f"--credential {agent.id} 'POST /tools/search'")
    output = check(f"--credential {agent.id} 'POST /tools/search'")

    assert data["credential"]["status"] == "expired"
    assert data["decisions"][0]["decision"] == "denied"
    assert data["decisions"][0]["reason"].startswith("credential expired at ")
    assert "expired at" in output.splitlines()[0]


def test_credential_expiring_later_is_still_allowed(agent):
    Credential.objects.filter(pk=agent.pk).update(expires_at=timezone.now() + timedelta(hours=1))

    data = check_json(f"--credential {agent.id} 'POST /tools/search'")

    assert (data["credential"]["status"], data["decisions"][0]["decision"]) == ("active", "allowed")


@pytest.mark.parametrize("route", ["/tools/search", "POST tools/search", "POST"])
def test_malformed_route_is_a_clear_error(agent, route):
    with pytest.raises(
        CommandError, match=re.escape("A route must be 'METHOD /path', e.g. 'POST /tools/search'")
    ):
        check(f"--credential {agent.id} {shlex.quote(route)}")


def test_unknown_credential_is_a_clear_error(db):
    with pytest.raises(CommandError, match="No credential with id '424242'"):
        check("--credential 424242 'POST /tools/search'")
