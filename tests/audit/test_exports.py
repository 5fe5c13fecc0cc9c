"""Exports of a tenant's audit trail: what an auditor receives, and what verify_export proves about it."""

from __future__ import annotations

import csv
import json
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.canonical import unpack_manifest
from audit.exports.formats import row_from_csv
from audit.models import AuditEvent, AuditSeal
from gateway.services import tenant_create
from tests.audit.export_helpers import (
    END,
    START,
    export,
    lines_of,
    public_key_file,
    seal,
    verify,
    write_events_at,
)


@pytest.fixture
def trail(transactional_db: None, tenant: Any) -> dict[str, Any]:
    """Events of acme before, in and after the period, in three seals of which two straddle its ends;
    an unsealed event at the end; and another tenant's events in the period."""
    AuditEvent.objects.filter(kind=AuditEvent.Kind.CHANGE).delete()
    other = tenant_create(name="globex")
    before = write_events_at(tenant.id, [-3, -1])
    first = write_events_at(tenant.id, [0, 1, 2, 5])
    seal(tenant.id)  # straddles the start: 2 events before it
    middle = write_events_at(tenant.id, [10, 20, 30, 40])
    seal(tenant.id)
    late = write_events_at(tenant.id, [55, 59.5, 61, 62])
    seal(tenant.id)  # straddles the end: 2 events after it
    unsealed = write_events_at(tenant.id, [59.9])
    write_events_at(other.id, [15, 16])
    seal(other.id)
    return {
        "before": before,
        "inside": first + middle + late[:2] + unsealed,
        "after": late[2:],
        "unsealed": unsealed,
        "tenant": tenant,
    }


def test_a_pristine_jsonl_export_verifies_offline_with_only_the_public_key(trail, tmp_path):
    result = export("acme", tmp_path / "acme.jsonl", "jsonl")

    ok, report = verify(tmp_path / "acme.jsonl", public_key_file(tmp_path))

    assert ok, report["first_problem"]
    assert (result["events"], result["seals"], result["unsealed"]) == (11, 3, 1)
    exported = [json.loads(line)["id"] for line in lines_of(tmp_path / "acme.jsonl")]
    assert exported == trail["inside"]  # the period's events of this tenant only, in id order
    assert (report["events"], report["seals"], report["unsealed"]) == (11, 3, 1)


def test_each_jsonl_line_is_the_events_canonical_form_and_rehashes_to_its_sealed_leaf(trail, tmp_path):
    import hashlib

    export("acme", tmp_path / "acme.jsonl", "jsonl")
    leaves = {
        event_id: leaf
        for seal_row in AuditSeal.objects.all()
        for event_id, leaf in unpack_manifest(bytes(seal_row.manifest))
    }
    for line in lines_of(tmp_path / "acme.jsonl"):
        event_id = json.loads(line)["id"]
        if event_id not in trail["unsealed"]:
            assert hashlib.sha256(b"\x00" + line.rstrip(b"\n")).digest() == leaves[event_id]


def test_the_manifest_proves_a_straddling_seals_events_outside_the_period_and_lists_unsealed_ones(
    trail, tmp_path
):
    export("acme", tmp_path / "acme.csv", "csv")
    manifest = json.loads((tmp_path / "acme.csv.manifest.json").read_text())

    outside = [
        json.loads(text)["id"] for item in manifest["evidence"]["seals"] for text in item["outside_period"]
    ]
    assert sorted(outside) == sorted(trail["before"] + trail["after"])
    assert [event_id for event_id, _ in manifest["evidence"]["unsealed"]] == trail["unsealed"]
    assert manifest["statement"]["unsealed"]["events"] == 1
    assert [s["sequence"] for s in manifest["statement"]["seals"]] == [1, 2, 3]
    assert manifest["signature"]["algorithm"] == "Ed25519"


def test_a_pristine_csv_export_verifies_and_reads_back_to_the_same_events(trail, tmp_path):
    export("acme", tmp_path / "acme.csv", "csv")

    ok, report = verify(tmp_path / "acme.csv", public_key_file(tmp_path))

    assert ok, report["first_problem"]
    with (tmp_path / "acme.csv").open(newline="") as source:
        rows = list(csv.reader(source))[1:]
    assert [row_from_csv(cells)["id"] for cells in rows] == trail["inside"]


def test_a_one_byte_change_of_the_file_fails_verification(trail, tmp_path):
    path = tmp_path / "acme.csv"
    export("acme", path, "csv")
    data = bytearray(path.read_bytes())
    position = data.index(b"search", len(data) // 2)
    data[position] = ord("S")
    path.write_bytes(bytes(data))

    ok, report = verify(path, public_key_file(tmp_path))

    assert not ok
    assert report["problems"][0]["kind"] == "edited"
    assert report["problems"][-1]["kind"] == "file"


def test_an_edited_event_line_is_named(trail, tmp_path):
    path = tmp_path / "acme.jsonl"
    export("acme", path, "jsonl")
    lines = lines_of(path)
    lines[4] = lines[4].replace(b'"tool":"search"', b'"tool":"delete"')
    path.write_bytes(b"".join(lines))

    ok, report = verify(path, public_key_file(tmp_path))

    assert not ok
    assert report["first_problem"].startswith(f"line 5: event {trail['inside'][4]} differs from what seal #2")
    assert report["first_problem"].endswith("edited")


def test_a_removed_event_line_is_named(trail, tmp_path):
    path = tmp_path / "acme.jsonl"
    export("acme", path, "jsonl")
    lines = lines_of(path)
    del lines[6]
    path.write_bytes(b"".join(lines))

    ok, report = verify(path, public_key_file(tmp_path))

    assert not ok
    assert report["first_problem"] == (
        f"event {trail['inside'][6]} of seal #2 is missing from the file (before line 7): removed"
    )


def test_an_inserted_event_line_is_named(trail, tmp_path):
    path = tmp_path / "acme.jsonl"
    export("acme", path, "jsonl")
    lines = lines_of(path)
    forged = json.loads(lines[2])
    forged["id"] = trail["inside"][2] + 1_000_000
    forged["tool"] = "exfiltrate"
    lines.insert(3, json.dumps(forged, sort_keys=True, separators=(",", ":")).encode() + b"\n")
    path.write_bytes(b"".join(lines))

    ok, report = verify(path, public_key_file(tmp_path))

    assert not ok
    assert report["problems"][0]["line"] == 4
    assert "inserted" in report["problems"][0]["message"]


def test_an_edited_unsealed_event_is_caught_by_the_manifests_signature(trail, tmp_path):
    path = tmp_path / "acme.jsonl"
    export("acme", path, "jsonl")
    lines = lines_of(path)
    lines[-1] = lines[-1].replace(b'"decision":"allowed"', b'"decision":"denied"')
    path.write_bytes(b"".join(lines))

    ok, report = verify(path, public_key_file(tmp_path))

    assert not ok
    assert "(not sealed yet) differs from the signed manifest: edited" in report["first_problem"]


def test_an_event_moved_from_the_file_into_the_manifests_outside_evidence_is_caught(trail, tmp_path):
    path = tmp_path / "acme.jsonl"
    export("acme", path, "jsonl")
    lines = lines_of(path)
    hidden = lines.pop(1)
    path.write_bytes(b"".join(lines))
    manifest_path = tmp_path / "acme.jsonl.manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["evidence"]["seals"][0]["outside_period"].append(hidden.rstrip(b"\n").decode())
    manifest_path.write_text(json.dumps(manifest))

    ok, report = verify(path, public_key_file(tmp_path))

    assert not ok
    assert (
        report["first_problem"]
        == f"event {trail['inside'][1]} of seal #1 lies in the period but is not in the file: removed"
    )


def test_an_event_deleted_from_the_database_before_the_export_is_named(trail, tmp_path):
    AuditEvent.objects.filter(id=trail["inside"][5]).delete()
    result = export("acme", tmp_path / "acme.jsonl", "jsonl")

    ok, report = verify(tmp_path / "acme.jsonl", public_key_file(tmp_path))

    assert result["missing"] == 1
    assert not ok
    assert report["first_problem"] == (
        f"event {trail['inside'][5]} of seal #2 was missing from the database when exported: deleted"
    )


def test_a_key_the_auditor_does_not_trust_fails_verification(trail, tmp_path):
    export("acme", tmp_path / "acme.jsonl", "jsonl")
    stranger = tmp_path / "stranger.pub"
    stranger.write_text("Aw9E7cWcd0O1CFb9TlH0RUG4lyUHQ8N_ZKJ83zPUFms")

    ok, report = verify(tmp_path / "acme.jsonl", stranger)

    assert not ok
    assert report["problems"][0]["kind"] == "signature"
    assert "not among the given public keys" in report["first_problem"]


def test_the_audit_keys_document_is_accepted_as_the_key_file(trail, tmp_path, client):
    export("acme", tmp_path / "acme.jsonl", "jsonl")
    keys = tmp_path / "audit-keys.json"
    keys.write_bytes(client.get("/.well-known/audit-keys").content)

    out = __import__("io").StringIO()
    call_command("verify_export", str(tmp_path / "acme.jsonl"), "--keys-file", str(keys), stdout=out)

    assert out.getvalue().strip().endswith("OK")


def test_a_period_that_ends_before_it_starts_is_refused_clearly(trail, tmp_path):
    with pytest.raises(CommandError, match="until: must be after since"):
        export("acme", tmp_path / "x.csv", "csv", since=END, until=START)
    assert not list(tmp_path.iterdir())


def test_a_period_without_events_gives_an_empty_export_that_still_verifies(trail, tmp_path):
    path = tmp_path / "empty.csv"
    export("acme", path, "csv", since=START + timedelta(days=3), until=START + timedelta(days=4))

    ok, report = verify(path, public_key_file(tmp_path))

    assert ok, report["first_problem"]
    assert report["events"] == 0
    assert path.read_text().startswith("id,event_id,created_at")


def test_csv_cells_a_spreadsheet_would_run_as_formulas_are_guarded_and_still_verify(trail, tmp_path):
    tenant = trail["tenant"]
    write_events_at(tenant.id, [30.5], tool='=HYPERLINK("http://evil")', reason="'quoted\r\nnext line")
    path = tmp_path / "acme.csv"
    export("acme", path, "csv")

    ok, report = verify(path, public_key_file(tmp_path))

    assert ok, report["first_problem"]
    with path.open(newline="") as source:
        rows = list(csv.reader(source))
    columns = rows[0]
    [guarded] = [row for row in rows[1:] if "HYPERLINK" in row[columns.index("tool")]]
    assert guarded[columns.index("tool")] == '\'=HYPERLINK("http://evil")'
    assert guarded[columns.index("reason")] == "''quoted\r\nnext line"


def test_each_export_is_itself_recorded_in_the_tenants_trail(trail, tmp_path):
    result = export("acme", tmp_path / "acme.csv", "csv")

    [event] = AuditEvent.objects.filter(kind=AuditEvent.Kind.ADMIN, tenant=trail["tenant"])
    assert event.details["action"] == "export" and event.details["source"] == "cli"
    assert event.details["sha256"] == result["sha256"] and event.details["events"] == 11
    assert event.reason.startswith("audit export (csv) of 2026-03-02T09:00:00.000000+00:00 to ")


def test_the_keys_can_be_fetched_from_the_gateways_audit_keys_url(trail, tmp_path, gateway):
    export("acme", tmp_path / "acme.jsonl", "jsonl")

    out = __import__("io").StringIO()
    url = f"{gateway.url}/.well-known/audit-keys"
    call_command("verify_export", str(tmp_path / "acme.jsonl"), "--keys-url", url, stdout=out)

    assert out.getvalue().strip().endswith("OK")
    with pytest.raises(CommandError, match="answered 404"):
        call_command(
            "verify_export", str(tmp_path / "acme.jsonl"), "--keys-url", f"{gateway.url}/nothing-here"
        )
