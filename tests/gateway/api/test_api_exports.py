"""Audit exports through the API: a reviewer asks for its tenant's export, watches it become ready,
downloads the file and its manifest, and verify_export accepts them offline."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import pytest

import audit.exports.services as export_services
from gateway.conf import gateway_settings
from gateway.services import tenant_create
from tests.audit.export_helpers import END, START, public_key_file, seal, write_events_at
from tests.commands import run_command
from tests.gateway.api.clients import member_caller

PERIOD = {"since": START.isoformat(), "until": END.isoformat()}


@pytest.fixture
def export_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "exports"
    conf = dataclasses.replace(gateway_settings(), export_dir=str(directory))
    monkeypatch.setattr(export_services, "gateway_settings", lambda: conf)
    return directory


def wait_ready(caller: Any, export_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        body = caller.call("GET", f"/api/v1/exports/{export_id}/").json()
        if body["state"] in ("ready", "failed"):
            return body  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, body
        time.sleep(0.1)


def test_a_reviewer_exports_its_tenant_and_the_download_verifies(
    transactional_db, settings, export_dir, tmp_path
):
    settings.CELERY_TASK_ALWAYS_EAGER = True  # the embedded default: written on a thread of the gateway
    tenant = tenant_create(name="acme")
    write_events_at(tenant.id, [1, 2, 3])
    seal(tenant.id)
    reviewer = member_caller(tenant, "reviewer", "rita")
    # when
    created = reviewer.call("POST", "/api/v1/exports/", {**PERIOD, "format": "jsonl"})
    assert created.status_code == 201, created.content
    export = wait_ready(reviewer, created.json()["id"])
    # then
    assert export["state"] == "ready" and export["events"] >= 3 and export["tenant"] == tenant.pk
    file = reviewer.call("GET", f"/api/v1/exports/{export['id']}/file/")
    manifest = reviewer.call("GET", f"/api/v1/exports/{export['id']}/manifest/")
    assert file.status_code == 200 and manifest.status_code == 200
    saved = tmp_path / "download.jsonl"
    saved.write_bytes(b"".join(file.streaming_content))
    (tmp_path / "download.jsonl.manifest.json").write_bytes(b"".join(manifest.streaming_content))
    run_command("verify_export", str(saved), "--public-key", str(public_key_file(tmp_path)))


def test_nobody_reaches_another_tenants_export(transactional_db, settings, export_dir):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    acme, globex = tenant_create(name="acme"), tenant_create(name="globex")
    owner = member_caller(globex, "admin", "gus")
    export_id = owner.call("POST", "/api/v1/exports/", {**PERIOD, "format": "csv"}).json()["id"]
    stranger = member_caller(acme, "admin", "alice")
    for path in ("", "file/", "manifest/"):
        assert stranger.call("GET", f"/api/v1/exports/{export_id}/{path}").status_code == 404
    assert stranger.call("GET", "/api/v1/exports/").json()["results"] == []
    asked = stranger.call("POST", "/api/v1/exports/", {**PERIOD, "format": "csv", "tenant": globex.pk})
    assert asked.status_code == 404
