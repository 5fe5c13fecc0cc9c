"""The SIEM sink and audit settings commands: show, change and delete a sink by the id
``list_siem_sinks`` prints (never its secret), and show a tenant's retention; all with ``--json``."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management.base import CommandError
from django.utils import timezone

from audit.models import SiemSink, SiemSinkState
from audit.retention import audit_retention_set
from audit.siem.services import siem_sink_create
from gateway.models import Tenant
from gateway.services import tenant_create
from tests.commands import run_command as run

pytestmark = pytest.mark.django_db
SECRET = "webhook-signing-secret-0123"
NEW_SECRET = "another-signing-secret-4567"


def run_json(line: str, *args: str) -> Any:
    return json.loads(run(line, *args, "--json"))


@pytest.fixture
def acme() -> Tenant:
    return tenant_create(name="acme")


@pytest.fixture
def hook(acme: Tenant) -> SiemSink:
    return siem_sink_create(
        tenant=acme, name="hook", kind="webhook", settings={"url": "https://siem.example/hook"}, secret=SECRET
    )


def test_show_siem_sink_shows_settings_and_delivery_but_never_the_secret(hook: SiemSink) -> None:
    SiemSinkState.objects.filter(pk=hook.pk).update(failures=2, last_error="connection refused")
    data = run_json(f"show_siem_sink {hook.pk}")
    assert (data["name"], data["kind"], data["has_secret"]) == ("hook", "webhook", True)
    assert (data["failures"], data["last_error"]) == (2, "connection refused")
    text = run(f"show_siem_sink {hook.pk}")
    assert "secret: set" in text and "last error: connection refused" in text
    assert SECRET not in text and SECRET not in json.dumps(data)


def test_update_siem_sink_merges_settings_and_keeps_what_is_not_given(hook: SiemSink) -> None:
    cursor = SiemSinkState.objects.get(pk=hook.pk).cursor
    data = run_json(f"update_siem_sink {hook.pk} --disable --sink-settings '{{\"batch_size\": 50}}'")
    assert data["enabled"] is False
    assert data["settings"] == {"url": "https://siem.example/hook", "batch_size": 50}
    assert data["cursor"] == cursor and data["has_secret"] is True
    data = run_json(
        f"update_siem_sink {hook.pk} --enable --name hook-2 --sink-settings '{{\"batch_size\": null}}'"
    )
    assert (data["enabled"], data["name"], data["settings"]) == (
        True,
        "hook-2",
        {"url": "https://siem.example/hook"},
    )


def test_update_siem_sink_replaces_the_secret_from_a_file(hook: SiemSink, tmp_path: Path) -> None:
    before = SiemSink.objects.get(pk=hook.pk).secret_encrypted
    secret_file = tmp_path / "hook.secret"
    secret_file.write_text(NEW_SECRET + "\n")
    output = run(f"update_siem_sink {hook.pk} --secret-file {secret_file}", "--json")
    assert NEW_SECRET not in output
    assert SiemSink.objects.get(pk=hook.pk).secret_encrypted != before


def test_update_siem_sink_refuses_bad_settings_naming_them(hook: SiemSink) -> None:
    with pytest.raises(CommandError, match="settings: unknown key"):
        run(f'update_siem_sink {hook.pk} --sink-settings \'{{"hots": "x"}}\'')
    with pytest.raises(CommandError, match="must be a JSON object"):
        run(f"update_siem_sink {hook.pk} --sink-settings '[1]'")
    assert SiemSink.objects.get(pk=hook.pk).settings == {"url": "https://siem.example/hook"}


def test_update_siem_sink_retry_now_skips_the_backoff(hook: SiemSink) -> None:
    SiemSinkState.objects.filter(pk=hook.pk).update(next_attempt_at=timezone.now() + timedelta(hours=1))
    assert run_json(f"update_siem_sink {hook.pk} --retry-now")["next_attempt_at"] is None


def test_delete_siem_sink_deletes_it_and_its_delivery_state(hook: SiemSink) -> None:
    data = run_json(f"delete_siem_sink {hook.pk}")
    assert data == {"id": hook.pk, "name": "hook", "tenant": "acme", "deleted": True}
    assert not SiemSink.objects.exists() and not SiemSinkState.objects.exists()
    with pytest.raises(CommandError, match=f"No SIEM sink with id '{hook.pk}'"):
        run(f"show_siem_sink {hook.pk}")


def test_show_audit_settings_says_forever_until_retention_is_set(acme: Tenant) -> None:
    assert run_json("show_audit_settings --tenant acme") == {"tenant": "acme", "retention_days": None}
    assert "keeps its audit events forever" in run("show_audit_settings --tenant acme")
    audit_retention_set(tenant=acme, days=365)
    assert run_json("show_audit_settings --tenant acme")["retention_days"] == 365
    with pytest.raises(CommandError, match="No tenant named 'nope'"):
        run("show_audit_settings --tenant nope")
