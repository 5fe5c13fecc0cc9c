"""Managing SIEM sinks from the CLI and the admin: the webhook secret goes in and never comes out."""

from __future__ import annotations

import io
import json
import sys
from typing import Any

import pytest
from django.test import Client

from audit.models import AuditEvent, SiemSink, SiemSinkState
from audit.siem.services import siem_sink_create
from gateway.crypto import decrypt_secret
from gateway.services import tenant_create
from tests.commands import run_command

SECRET = "cli-webhook-secret-0123456789"
URL = "https://siem.example/hook"


@pytest.fixture
def acme(db: None) -> Any:
    return tenant_create(name="acme")


@pytest.fixture
def admin(db: None, client: Client, django_user_model: Any) -> Client:
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com", "unused"))
    return client


def trail_text() -> str:
    return json.dumps(list(AuditEvent.objects.values("details", "reason", "path")), default=str)


def test_create_siem_sink_reads_the_secret_from_a_file_and_never_prints_it(acme, tmp_path):
    secret_file = tmp_path / "hook.secret"
    secret_file.write_text(SECRET + "\n")

    out = run_command(
        f"create_siem_sink --tenant acme --kind webhook --url {URL} --secret-file {secret_file} --json"
    )

    data = json.loads(out)
    assert data["kind"] == "webhook" and data["has_secret"] is True and data["settings"] == {"url": URL}
    assert SECRET not in out and SECRET not in trail_text()
    assert decrypt_secret(SiemSink.objects.get().secret_encrypted) == SECRET
    change = AuditEvent.objects.get(details__object_type="siemsink")
    assert (
        change.details["source"] == "cli" and change.details["changes"]["secret_encrypted"]["after"] == "set"
    )


def test_create_siem_sink_reads_the_secret_from_standard_input(acme, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(SECRET + "\n"))
    run_command(f"create_siem_sink --tenant acme --kind webhook --name soc --url {URL}")
    assert decrypt_secret(SiemSink.objects.get(name="soc").secret_encrypted) == SECRET


def test_create_siem_sink_names_a_bad_setting_without_a_traceback(acme):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="port must be an integer"):
        run_command("create_siem_sink --tenant acme --kind syslog --host logs.example --port 70000")


def test_list_siem_sinks_shows_the_delivery_state_and_never_the_secret(acme):
    siem_sink_create(tenant=acme, name="hook", kind="webhook", settings={"url": URL}, secret=SECRET)
    SiemSinkState.objects.update(failures=3, last_error="webhook answered HTTP 503")

    out = run_command("list_siem_sinks --json")

    sink = json.loads(out)["sinks"][0]
    assert (sink["name"], sink["failures"], sink["last_error"]) == ("hook", 3, "webhook answered HTTP 503")
    assert SECRET not in out and "secret_encrypted" not in out
    assert "failures 3" in run_command("list_siem_sinks --tenant acme")


def test_the_admin_creates_a_sink_with_a_write_only_secret(acme, admin):
    form = {
        "tenant": acme.pk,
        "name": "hook",
        "kind": "webhook",
        "settings": json.dumps({"url": URL}),
        "enabled": "on",
        "secret": SECRET,
    }

    response = admin.post("/admin/audit/siemsink/add/", form)

    assert response.status_code == 302, response.content[:2000]
    sink = SiemSink.objects.get()
    assert (
        decrypt_secret(sink.secret_encrypted) == SECRET and SiemSinkState.objects.filter(sink=sink).exists()
    )
    page = admin.get(f"/admin/audit/siemsink/{sink.pk}/change/").content.decode()
    assert SECRET not in page and sink.secret_encrypted not in page
    assert AuditEvent.objects.get(details__object_type="siemsink").details["source"] == "admin"


def test_the_admin_keeps_the_secret_when_left_empty_and_names_bad_settings(acme, admin):
    sink = siem_sink_create(tenant=acme, name="hook", kind="webhook", settings={"url": URL}, secret=SECRET)
    form = {"tenant": acme.pk, "name": "hook", "kind": "webhook", "enabled": "on", "secret": ""}

    kept = admin.post(
        f"/admin/audit/siemsink/{sink.pk}/change/",
        {**form, "settings": json.dumps({"url": URL, "batch_size": 10})},
    )
    refused = admin.post(
        f"/admin/audit/siemsink/{sink.pk}/change/", {**form, "settings": json.dumps({"url": "ftp://x"})}
    )

    assert kept.status_code == 302
    sink.refresh_from_db()
    assert decrypt_secret(sink.secret_encrypted) == SECRET and sink.settings["batch_size"] == 10
    assert refused.status_code == 200 and "https://" in refused.content.decode()
