"""The OpenAPI 3 schema is valid, its interactive docs come from the gateway itself, and schemathesis,
run against a live gateway (a real ASGI server) with a tenant admin's write token, finds no 500 and
no response that violates the schema."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from drf_spectacular.validation import validate_schema

from gateway.services import credential_create, target_create, tenant_create
from tests.conftest import Gateway
from tests.factories import listed
from tests.gateway.api.clients import member_caller

#: The run's budget: well under a minute on a loaded two-core machine.
MAX_EXAMPLES = 20
MAX_SECONDS = 30


@pytest.mark.django_db
def test_schema_is_valid_openapi_3() -> None:
    response = Client().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = response.json()
    validate_schema(schema)  # raises on an invalid OpenAPI 3 document
    assert schema["openapi"].startswith("3.")
    assert {"/api/v1/credentials/{id}/rotate/", "/api/v1/tools/{id}/approve/"} <= set(schema["paths"])
    put = schema["paths"]["/api/v1/targets/{id}/"]["put"]
    assert any(p["name"] == "If-Match" for p in put["parameters"]) and "412" in put["responses"]


@pytest.mark.django_db
def test_interactive_docs_load_only_the_gateways_own_files() -> None:
    page = Client().get("/api/docs/").content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert assets and all(asset.startswith("/static/") for asset in assets), assets
    for asset in assets:
        assert finders.find(asset.removeprefix("/static/")), asset
    assert "https://" not in page and "http://" not in page


def test_schemathesis_finds_no_server_error_and_no_schema_violation(gateway: Gateway, tmp_path: Path) -> None:
    # given a tenant with one object of each kind, and its admin's write token
    tenant = tenant_create(name="acme")
    target = target_create(tenant=tenant, slug="docs", upstream_url="http://127.0.0.1:9/mcp")
    credential_create(tenant=tenant, name="agent", targets=[target], allow=[("POST", "/tools/*")])
    listed(target, "search")
    token = member_caller(tenant, "admin", "alice").token
    # when schemathesis runs against the live gateway
    command = [
        str(Path(sys.executable).with_name("st")), "run", f"{gateway.url}/api/schema/?format=json",
        "--url", gateway.url, "-H", f"Authorization: Token {token}",
        "--checks", "not_a_server_error,response_schema_conformance,status_code_conformance,"
        "content_type_conformance",
        "--max-examples", str(MAX_EXAMPLES), "--max-time", str(MAX_SECONDS), "--phases", "examples,coverage,fuzzing",
        "--workers", "1", "--seed", "1", "--request-timeout", "20", "--no-color",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=MAX_SECONDS * 4, cwd=tmp_path)
    # then
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
