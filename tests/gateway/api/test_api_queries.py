"""Query-count baselines: a list page costs the same number of queries for 2 rows as for 20, so a
serializer that starts reading a relation per row fails here."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from gateway.services import credential_create, target_create, tenant_create
from metering.services import meter_create
from tests.gateway.api.clients import Caller, member_caller
from tests.gateway.test_admin import audit_event

pytestmark = pytest.mark.django_db
ENDPOINTS = ["targets", "credentials", "rules", "meters", "audit-events"]


def grow(tenant_name: str, rows: int) -> Caller:
    tenant = tenant_create(name=tenant_name)
    for index in range(rows):
        target = target_create(
            tenant=tenant, slug=f"{tenant_name}-{index}", upstream_url="http://127.0.0.1:9/"
        )
        credential = credential_create(
            tenant=tenant,
            name=f"agent-{index}",
            targets=[target],
            allow=[("POST", "/tools/a"), ("GET", "/b")],
        ).credential
        meter_create(tenant=tenant, credential=credential, kind="request_count", window="minute", limit=5)
        audit_event(target, credential=credential)
    return member_caller(tenant, "admin", f"{tenant_name}-admin")


def queries(caller: Caller, endpoint: str) -> int:
    caller.call("GET", f"/api/v1/{endpoint}/")  # warm: the token's last use is recorded once a minute
    with CaptureQueriesContext(connection) as captured:
        response = caller.call("GET", f"/api/v1/{endpoint}/?page_size=100")
    assert response.status_code == 200
    return len(captured.captured_queries)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_list_queries_do_not_grow_with_rows(endpoint: str) -> None:
    small, large = grow("small", 2), grow("large", 20)
    assert queries(large, endpoint) == queries(small, endpoint)
