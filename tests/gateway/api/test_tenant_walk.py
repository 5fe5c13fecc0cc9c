"""The cross-tenant walk: every API endpoint (list, detail, every action, every write) as a tenant
admin and as a reviewer of tenant A against the objects of tenant B gets 403 or 404, no list shows a
row of B, and B's objects are unchanged afterwards. A reviewer reads audit and usage and changes
nothing."""

from __future__ import annotations

from typing import Any

import pytest

from audit.changes import snapshot
from gateway.api_urls import router
from tests.gateway.api.clients import Caller, member_caller
from tests.gateway.test_tenant_roles import populate

#: Each endpoint and the object of ``populate`` it serves.
ENDPOINTS = {
    "tenants": "tenant",
    "targets": "target",
    "credentials": "credential",
    "rules": "allowrule",
    "meters": "meter",
    "filters": "filter",
    "redaction-policies": "redactionpolicy",
    "tools": "pinnedtool",
    "audit-events": "auditevent",
    "usage": "usagerollup",
    "siem-sinks": "siemsink",
    "audit-settings": "tenant",  # a tenant's audit settings are addressed by the tenant's id
    "oauth-clients": "oauthclient",
    "exports": "auditexport",
}
#: The actions on one object (POST /<endpoint>/<id>/<action>/).
ACTIONS = {"credentials": ["rotate", "revoke", "deactivate"], "tools": ["approve"], "siem-sinks": ["retry"]}
REFUSED = {403, 404}


@pytest.fixture
def tenants(db: None) -> tuple[dict[str, Any], dict[str, Any]]:
    return populate("acme"), populate("globex")


def every_row(caller: Caller, endpoint: str, query: str = "") -> tuple[int, list[dict[str, Any]]]:
    """Every row a list shows, following the cursor (bounded)."""
    response = caller.call("GET", f"/api/v1/{endpoint}/?page_size=500{query}")
    if response.status_code != 200:
        return response.status_code, []
    rows, body = [], response.json()
    for _ in range(20):
        rows.extend(body["results"])
        if not body["next"]:
            break
        body = caller.call("GET", body["next"]).json()
    return 200, rows


def foreign_writes(acme: dict[str, Any], globex: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """Creates in A that reference B's objects, and creates naming B as the tenant."""
    b_tenant, b_target, b_credential = globex["tenant"].pk, globex["target"].pk, globex["credential"].pk
    return [
        (
            "POST",
            "/api/v1/targets/",
            {"tenant": b_tenant, "slug": "x", "upstream_url": "http://127.0.0.1:9/"},
        ),
        ("POST", "/api/v1/credentials/", {"tenant": b_tenant, "name": "x"}),
        (
            "POST",
            "/api/v1/exports/",
            {
                "tenant": b_tenant,
                "since": "2026-01-01T00:00:00Z",
                "until": "2026-01-02T00:00:00Z",
                "format": "csv",
            },
        ),
        ("POST", "/api/v1/credentials/", {"name": "x", "targets": [b_target]}),
        ("POST", "/api/v1/rules/", {"credential": b_credential, "method": "POST", "path": "/tools/*"}),
        ("POST", "/api/v1/meters/", {"tenant": b_tenant, "kind": "request_count", "limit": 1}),
        ("POST", "/api/v1/meters/", {"credential": b_credential, "kind": "request_count", "limit": 1}),
        ("POST", "/api/v1/filters/", {"tenant": b_tenant, "paths": ["$.x"]}),
        ("POST", "/api/v1/filters/", {"target": b_target, "paths": ["$.x"]}),
        ("POST", "/api/v1/redaction-policies/", {"credential": b_credential, "detectors": ["email"]}),
        ("PATCH", f"/api/v1/credentials/{acme['credential'].pk}/", {"targets": [b_target]}),
        ("PATCH", f"/api/v1/meters/{acme['meter'].pk}/", {"credential": b_credential}),
        ("PATCH", f"/api/v1/filters/{acme['filter'].pk}/", {"target": b_target}),
        ("PATCH", f"/api/v1/targets/{acme['target'].pk}/", {"tenant": b_tenant}),
        (
            "POST",
            "/api/v1/siem-sinks/",
            {"tenant": b_tenant, "name": "x", "kind": "syslog", "settings": {"host": "logs.example"}},
        ),
        ("PATCH", f"/api/v1/siem-sinks/{acme['siemsink'].pk}/", {"tenant": b_tenant}),
        ("POST", "/api/v1/oauth-clients/", {"credential": b_credential, "grant": "client_credentials"}),
    ]


def walk(caller: Caller, acme: dict[str, Any], globex: dict[str, Any]) -> list[str]:
    """Every call of the walk that was not refused, or a list that showed a row of B."""
    leaks = []
    for endpoint, key in ENDPOINTS.items():
        foreign = globex[key]
        status, rows = every_row(caller, endpoint)
        if status not in (200, 403) or any(row["id"] == foreign.pk for row in rows):
            leaks.append(f"list {endpoint}: {status}, rows {[row['id'] for row in rows]}")
        for query in (f"&tenant={globex['tenant'].pk}", f"&target={globex['target'].pk}"):
            status, rows = every_row(caller, endpoint, query)
            if any(row["id"] == foreign.pk for row in rows):
                leaks.append(f"list {endpoint}{query} shows B's row")
        detail = f"/api/v1/{endpoint}/{foreign.pk}/"
        calls = [("GET", detail, None), ("PUT", detail, {}), ("PATCH", detail, {}), ("DELETE", detail, None)]
        calls += [
            ("POST", f"{detail}{name}/", {"served_hash": "0" * 64}) for name in ACTIONS.get(endpoint, [])
        ]
        for method, path, body in calls:
            status = caller.call(method, path, body).status_code
            if status not in REFUSED | {405}:
                leaks.append(f"{method} {path}: {status}")
    for method, path, body in foreign_writes(acme, globex):
        status = caller.call(method, path, body).status_code
        if status not in REFUSED:
            leaks.append(f"{method} {path} {body}: {status}")
    return leaks


def test_the_walk_covers_every_endpoint() -> None:
    assert {prefix for prefix, _, _ in router.registry} == set(ENDPOINTS)


@pytest.mark.parametrize("role", ["admin", "reviewer"])
def test_user_of_tenant_a_reaches_nothing_of_tenant_b(tenants: Any, role: str) -> None:
    # given
    acme, globex = tenants
    caller = member_caller(acme["tenant"], role, f"acme-{role}")
    before = {key: snapshot(type(row).objects.get(pk=row.pk)) for key, row in globex.items()}
    # when
    leaks = walk(caller, acme, globex)
    # then
    assert leaks == []
    after = {key: snapshot(type(row).objects.get(pk=row.pk)) for key, row in globex.items()}
    assert after == before


def test_admin_of_tenant_a_lists_only_tenant_a(tenants: Any) -> None:
    acme, _ = tenants
    caller = member_caller(acme["tenant"], "admin", "alice")
    for endpoint, key in ENDPOINTS.items():
        status, rows = every_row(caller, endpoint)
        assert status == 200, endpoint
        assert acme[key].pk in {row["id"] for row in rows}, endpoint


def test_reviewer_reads_audit_usage_and_exports_and_nothing_else(tenants: Any) -> None:
    acme, _ = tenants
    caller = member_caller(acme["tenant"], "reviewer", "rita")
    readable = {endpoint for endpoint in ENDPOINTS if every_row(caller, endpoint)[0] == 200}
    assert readable == {"audit-events", "usage", "exports"}


def test_reviewer_changes_nothing_of_its_own_tenant(tenants: Any) -> None:
    acme, _ = tenants
    caller = member_caller(acme["tenant"], "reviewer", "rita")
    before = {key: snapshot(type(row).objects.get(pk=row.pk)) for key, row in acme.items()}
    for endpoint, key in ENDPOINTS.items():
        detail = f"/api/v1/{endpoint}/{acme[key].pk}/"
        # asking for an export is what a reviewer may do (it changes no configuration)
        create = [] if endpoint == "exports" else [("POST", f"/api/v1/{endpoint}/")]
        for method, path in [("PATCH", detail), ("DELETE", detail), *create]:
            assert caller.call(method, path, {}).status_code in {403, 405}, (method, path)
        for name in ACTIONS.get(endpoint, []):
            assert caller.call("POST", f"{detail}{name}/", {"served_hash": "0" * 64}).status_code == 403
    after = {key: snapshot(type(row).objects.get(pk=row.pk)) for key, row in acme.items()}
    assert after == before


def test_tenant_admin_cannot_create_or_delete_tenants(tenants: Any) -> None:
    acme, _ = tenants
    caller = member_caller(acme["tenant"], "admin", "alice")
    assert caller.call("POST", "/api/v1/tenants/", {"name": "initech"}).status_code == 403
    assert caller.call("DELETE", f"/api/v1/tenants/{acme['tenant'].pk}/").status_code == 403
    response = caller.call("PATCH", f"/api/v1/tenants/{acme['tenant'].pk}/", {"name": "acme-renamed"})
    assert response.status_code == 200 and response.json()["name"] == "acme-renamed"
