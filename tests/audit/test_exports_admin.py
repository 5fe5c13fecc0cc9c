"""Exports from the admin: requested with a form, written in the background (a thread of the gateway
process without a broker, a Celery worker with one), followed in the list, downloaded when ready."""

from __future__ import annotations

import dataclasses
import io
import time
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

import audit.exports.services as export_services
from audit.models import AuditEvent, AuditExport
from audit.selectors import export_visible_to
from gateway.conf import gateway_settings
from tests.audit.export_helpers import END, START, export_requested, public_key_file, seal, write_events_at


@pytest.fixture
def export_dir(tmp_path, monkeypatch):
    """GATEWAY_EXPORT_DIR for this test."""
    directory = tmp_path / "exports"
    conf = dataclasses.replace(gateway_settings(), export_dir=str(directory))
    monkeypatch.setattr(export_services, "gateway_settings", lambda: conf)
    return directory


@pytest.fixture
def embedded(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True  # what settings.py says when there is no broker


@pytest.fixture
def events(transactional_db: None, tenant: Any) -> list[int]:
    AuditEvent.objects.filter(kind=AuditEvent.Kind.CHANGE).delete()
    ids = write_events_at(tenant.id, [1, 2, 3, 4])
    seal(tenant.id)
    return ids + write_events_at(tenant.id, [5])


def wait_for(export_id: int, timeout: float = 60.0) -> AuditExport:
    deadline = time.monotonic() + timeout
    while True:
        export = AuditExport.objects.get(pk=export_id)
        if export.state in (AuditExport.State.READY, AuditExport.State.FAILED):
            return export
        assert time.monotonic() < deadline, f"export still {export.state} at {export.progress}%"
        time.sleep(0.1)


def request_export(client: Any, tenant: Any, fmt: str = "jsonl") -> AuditExport:
    response = client.post(
        "/admin/audit/auditexport/request/",
        {
            "tenant": tenant.pk,
            "since": START.strftime("%Y-%m-%d %H:%M"),
            "until": END.strftime("%Y-%m-%d %H:%M"),
            "format": fmt,
        },
    )
    assert response.status_code == 302, response.content[:2000]
    return AuditExport.objects.get()


def test_an_export_requested_in_the_admin_is_written_in_the_background_and_downloaded_when_ready(
    events, tenant, admin_client, export_dir, embedded, tmp_path
):
    # when a reviewer requests an export in the admin
    export = wait_for(request_export(admin_client, tenant).pk)

    # then it is written by the gateway process itself, and the list offers the file and its manifest
    assert export.state == AuditExport.State.READY, export.error
    assert (export.events, export.progress, export.requested_by) == (5, 100, "admin")
    listing = admin_client.get("/admin/audit/auditexport/").content.decode()
    assert f"/admin/audit/auditexport/{export.pk}/file/" in listing and "ready: 5 events" in listing
    body = b"".join(admin_client.get(f"/admin/audit/auditexport/{export.pk}/file/").streaming_content)
    manifest = b"".join(admin_client.get(f"/admin/audit/auditexport/{export.pk}/manifest/").streaming_content)
    assert body.count(b"\n") == 5
    [recorded] = AuditEvent.objects.filter(kind=AuditEvent.Kind.ADMIN)
    assert (recorded.details["actor"], recorded.details["source"]) == ("admin", "admin")

    # and what was downloaded verifies offline
    (tmp_path / "download.jsonl").write_bytes(body)
    (tmp_path / "download.jsonl.manifest.json").write_bytes(manifest)
    out = io.StringIO()
    call_command(
        "verify_export",
        str(tmp_path / "download.jsonl"),
        "--public-key",
        str(public_key_file(tmp_path)),
        stdout=out,
    )
    assert out.getvalue().strip().endswith("OK")


def test_the_list_shows_progress_and_refreshes_while_an_export_waits(
    events, tenant, admin_client, export_dir, settings
):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    sent: list[Any] = []
    from gateway.celery import app

    original = app.send_task
    app.send_task = lambda name, args: sent.append((name, args))  # no worker here: it stays pending
    try:
        export = request_export(admin_client, tenant)
    finally:
        app.send_task = original
    listing = admin_client.get("/admin/audit/auditexport/").content.decode()

    assert sent == [("audit.export", [export.pk])]
    assert '<progress max="100" value="0">' in listing
    assert 'http-equiv="refresh"' in listing
    assert admin_client.get(f"/admin/audit/auditexport/{export.pk}/file/").status_code == 404


def test_a_period_that_ends_before_it_starts_is_refused_by_the_form(events, tenant, admin_client, export_dir):
    response = admin_client.post(
        "/admin/audit/auditexport/request/",
        {"tenant": tenant.pk, "since": "2026-03-02 10:00", "until": "2026-03-02 09:00", "format": "csv"},
    )
    assert response.status_code == 200
    assert "The period must end after it starts." in response.content.decode()
    assert not AuditExport.objects.exists()


def test_an_export_that_cannot_be_written_fails_with_its_reason(
    events, tenant, admin_client, tmp_path, monkeypatch, embedded
):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    conf = dataclasses.replace(gateway_settings(), export_dir=str(blocker / "exports"))
    monkeypatch.setattr(export_services, "gateway_settings", lambda: conf)

    export = wait_for(request_export(admin_client, tenant).pk)

    assert export.state == AuditExport.State.FAILED
    assert export.error.startswith(("FileExistsError", "NotADirectoryError"))
    assert "failed: " in admin_client.get("/admin/audit/auditexport/").content.decode()


def test_only_the_tenants_own_reviewers_and_admins_may_see_an_export(
    events, tenant, client, admin_client, export_dir, embedded
):
    from gateway.services import tenant_create, user_create

    export = wait_for(request_export(admin_client, tenant).pk)
    user_model = get_user_model()
    member = user_model.objects.create_user("member", password="pw-member-1")
    staff_without_role = user_model.objects.create_user("staff", password="pw", is_staff=True)
    password = "a-long-test-password-1"
    reviewer = user_create(username="rita", tenant=tenant, role="reviewer", password=password).user
    other = tenant_create(name="globex")
    foreign = user_create(username="gus", tenant=other, role="admin", password=password).user

    client.force_login(member)
    response = client.get(f"/admin/audit/auditexport/{export.pk}/file/")
    assert response.status_code == 302 and "/login/" in response["Location"]
    visible = [export_visible_to(user, export) for user in (member, staff_without_role, reviewer, foreign)]
    assert visible == [False, False, True, False]
    # the other tenant's admin gets no file and no list row, and cannot ask for this tenant's export
    client.force_login(foreign)
    assert client.get(f"/admin/audit/auditexport/{export.pk}/file/").status_code == 404
    assert f"/auditexport/{export.pk}/file/" not in client.get("/admin/audit/auditexport/").content.decode()
    refused = client.post(
        "/admin/audit/auditexport/request/",
        {"tenant": tenant.pk, "since": "2026-01-01 00:00", "until": "2026-01-02 00:00", "format": "csv"},
    )
    assert refused.status_code == 200 and "Select a valid choice" in refused.content.decode()
    # the tenant's reviewer downloads it
    client.force_login(reviewer)
    assert client.get(f"/admin/audit/auditexport/{export.pk}/file/").status_code == 200


def test_a_real_celery_worker_writes_the_export(events, tenant, export_dir, monkeypatch, redis_url):
    from gateway.celery import app
    from tests.metering.processes import CeleryWorker

    export = export_requested(tenant)
    queue = f"export-test-{uuid.uuid4().hex}"  # its own queue: no other worker on this broker takes it
    monkeypatch.setenv("GATEWAY_EXPORT_DIR", str(export_dir))
    worker = CeleryWorker(redis_url=redis_url, queue=queue)
    try:
        app.send_task("audit.export", args=[export.pk], queue=queue)
        deadline = time.monotonic() + 90
        while AuditExport.objects.get(pk=export.pk).state != AuditExport.State.READY:
            assert worker.popen.poll() is None, worker.output()
            assert time.monotonic() < deadline, f"the worker did not export: {worker.output()}"
            time.sleep(0.2)
    finally:
        worker.stop()
    export.refresh_from_db()
    assert export.events == 5
    assert (export_dir / export.file_name).read_text().count("\n") == 6
    assert (export_dir / f"{export.file_name}.manifest.json").is_file()
    assert export.finished_at is not None and export.finished_at - export.requested_at > timedelta(0)


def test_progress_is_visible_to_others_while_the_export_still_reads_its_snapshot(events, tenant):
    import threading

    from django.db import connections

    from audit.exports.events import export_snapshot
    from audit.exports.services import ProgressRecorder

    export = export_requested(tenant)
    seen: list[int] = []

    def look() -> None:
        seen.append(AuditExport.objects.get(pk=export.pk).progress)
        connections.close_all()

    with export_snapshot(), ProgressRecorder(export.pk) as recorder:
        recorder.report(250, 1000)
        reader = threading.Thread(target=look)
        reader.start()
        reader.join()

    assert seen == [25]


def test_a_failed_or_stalled_export_can_be_run_again_from_the_list(
    events, tenant, admin_client, export_dir, embedded
):
    from django.utils import timezone

    now = timezone.now()
    failed = export_requested(tenant, state="failed", error="OSError: disk full")
    stalled = export_requested(
        tenant, format="jsonl", state="running", progress=40, updated_at=now - timedelta(hours=1)
    )
    moving = export_requested(tenant, state="running", progress=40, updated_at=now)
    assert "stalled at 40%" in admin_client.get("/admin/audit/auditexport/").content.decode()

    response = admin_client.post(
        "/admin/audit/auditexport/",
        {"action": "run_again", "_selected_action": [failed.pk, stalled.pk, moving.pk]},
    )

    assert response.status_code == 302
    assert wait_for(failed.pk).state == AuditExport.State.READY
    assert wait_for(stalled.pk).state == AuditExport.State.READY
    assert (
        AuditExport.objects.get(pk=moving.pk).state == AuditExport.State.RUNNING
    )  # still moving: left alone
