"""``manage.py verify_audit``: an untouched trail verifies; each kind of tampering is named."""

from __future__ import annotations

import io
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from audit.canonical import EVENT_FIELDS
from audit.models import AuditEvent, AuditSeal, AuditVerification
from audit.services import audit_seal_run
from audit.signing import parse_signing_key, sign
from audit.verification import verify_chain
from audit.writer import write_records
from gateway.services import tenant_create
from tests.audit.test_seals import events, signing_keys_set
from tests.commands import run_verdict
from tests.conftest import issue_credential, mcp_client, run

KEY_A = "3q5M0pYqvL3mmHq4m2LcxOB6PHdrN8TAx1n-mSlD3Ss="  # the tests' configured key
KEY_B = "Q0n3i0v6vJmD3sWmVq4w1xk3Xk9O7r0JYb2m2sU1xXo="


def verify(*args: str) -> tuple[bool, dict[str, Any]]:
    """Run ``verify_audit --json``: (passed, its JSON)."""
    return run_verdict("verify_audit", *args)


def first_problem(data: dict[str, Any]) -> dict[str, Any]:
    return next(chain["first_problem"] for chain in data["chains"] if chain["first_problem"])


@pytest.fixture
def tenant(tenant: Any) -> Any:
    """The shared tenant, its creation (a change-log entry) left out: these tests count the events they
    write and the seals they make."""
    AuditEvent.objects.filter(kind=AuditEvent.Kind.CHANGE).delete()
    return tenant


@pytest.fixture
def sealed(transactional_db: None, tenant: Any) -> list[int]:
    """Twelve events of tenant acme in three seals of four; their ids in order."""
    write_records(events(12, "acme", tenant_id=tenant.id, tool="search"))
    audit_seal_run(max_events=4)
    return list(AuditEvent.objects.order_by("id").values_list("id", flat=True))


def test_an_untouched_trail_verifies_and_the_verification_is_recorded(sealed, tenant):
    passed, data = verify()

    assert passed and data["ok"]
    [chain] = data["chains"]
    assert (chain["tenant"], chain["seals_checked"], chain["events_checked"]) == ("acme", 3, 12)
    verification = AuditVerification.objects.get()
    assert (verification.tenant_id, verification.ok) == (tenant.id, True)


def test_an_edited_tool_name_is_named(sealed):
    AuditEvent.objects.filter(id=sealed[5]).update(tool="exfiltrate")

    passed, data = verify()

    assert not passed
    assert first_problem(data) | {"message": ""} == {
        "kind": "edited",
        "seal": 2,
        "event": sealed[5],
        "message": "",
    }
    assert not AuditVerification.objects.get().ok


def test_the_text_report_names_the_first_bad_event_and_exits_non_zero(sealed):
    AuditEvent.objects.filter(id__in=[sealed[9], sealed[2]]).update(latency_ms=0.5)
    out = io.StringIO()

    with pytest.raises(CommandError, match="does not verify"):
        call_command("verify_audit", stdout=out)

    first_line = out.getvalue().splitlines()[0]
    assert first_line.startswith("acme: 3 seal(s), 12 event(s): FAILED: ")
    assert f"event {sealed[2]} differs from what seal #1 sealed: edited" in first_line


def test_a_deleted_event_is_named(sealed):
    AuditEvent.objects.filter(id=sealed[5]).delete()

    passed, data = verify()

    assert not passed
    assert (first_problem(data)["kind"], first_problem(data)["event"]) == ("deleted", sealed[5])


def test_a_forged_event_carrying_a_seal_is_named(sealed):
    row = AuditEvent.objects.filter(id=sealed[5]).values(*EVENT_FIELDS, "seal_id").get()
    forged = AuditEvent.objects.create(
        **{**row, "id": None, "event_id": uuid.uuid4(), "tool": "forged", "request_id": "forged"}
    )

    passed, data = verify()

    assert not passed
    assert first_problem(data) | {"message": ""} == {
        "kind": "inserted",
        "seal": 2,
        "event": forged.id,
        "message": "",
    }


def test_a_forged_unsealed_event_below_sealed_ids_is_named_once_the_grace_has_passed(
    transactional_db, tenant
):
    # given a gap in the ids (a write rolled back), and seals covering ids on both sides of it
    write_records(events(2, "before", tenant_id=tenant.id))
    write_records(events(1, "gap", tenant_id=tenant.id))
    gap_id = AuditEvent.objects.get(request_id="gap-0").id
    AuditEvent.objects.filter(id=gap_id).delete()
    write_records(events(2, "after", tenant_id=tenant.id))
    audit_seal_run()

    # when an event is forged into the gap afterwards
    forged = AuditEvent.objects.create(
        **{**AuditEvent.objects.values(*EVENT_FIELDS).first(), "id": gap_id, "event_id": uuid.uuid4()}
    )

    # then it passes while a commit could still be late, and is named as inserted after that
    assert verify_chain(tenant_id=tenant.id, since=None, now=timezone.now()).ok
    later = verify_chain(tenant_id=tenant.id, since=None, now=timezone.now() + timedelta(minutes=6))
    assert (later.problems[0].kind, later.problems[0].event) == ("inserted", forged.id)
    assert "added after the fact" in later.problems[0].message


def test_two_swapped_events_are_named_as_moved(sealed):
    # given the contents of two events of one seal exchanged (the ids stay)
    first, second = (
        AuditEvent.objects.filter(id=event_id).values(*EVENT_FIELDS[1:]).get()
        for event_id in (sealed[5], sealed[6])
    )
    AuditEvent.objects.filter(id=sealed[5]).update(**{**second, "event_id": uuid.uuid4()})
    AuditEvent.objects.filter(id=sealed[6]).update(**first)
    AuditEvent.objects.filter(id=sealed[5]).update(event_id=second["event_id"])

    passed, data = verify()

    assert not passed
    problem = first_problem(data)
    assert (problem["kind"], problem["event"]) == ("moved", sealed[5])
    assert f"sealed as event {sealed[6]}" in problem["message"]


def test_seals_signed_by_a_rotated_out_key_still_verify(sealed):
    # given a new key first, the old one kept after it
    with signing_keys_set(KEY_B, KEY_A):
        write_records(events(3, "after-rotation"))
        audit_seal_run()
        newest = AuditSeal.objects.get(tenant__isnull=True)

        passed, data = verify()

    assert newest.key_id == parse_signing_key(KEY_B).key_id
    assert AuditSeal.objects.exclude(key_id=newest.key_id).count() == 3
    assert passed and data["ok"]


def test_a_seal_whose_key_was_dropped_fails_naming_the_key(sealed):
    with signing_keys_set(KEY_B):
        passed, data = verify()

    assert not passed
    problem = first_problem(data)
    assert problem["kind"] == "signature" and problem["seal"] == 1
    assert "not in GATEWAY_AUDIT_SIGNING_KEYS" in problem["message"]


def test_a_wrong_signature_is_detected(sealed):
    seal = AuditSeal.objects.get(sequence=2)
    AuditSeal.objects.filter(id=seal.id).update(signature=sign(parse_signing_key(KEY_B), b"other bytes"))

    passed, data = verify()

    assert not passed
    assert first_problem(data) | {"message": ""} == {
        "kind": "signature",
        "seal": 2,
        "event": None,
        "message": "",
    }


def test_a_changed_root_with_a_valid_looking_link_is_detected(sealed):
    # an attacker recomputing a seal's root cannot re-sign it, and the next seal's link breaks too
    AuditSeal.objects.filter(sequence=2).update(seal_hash="0" * 64, previous_hash="f" * 64)

    passed, data = verify()

    kinds = {(problem["kind"], problem["seal"]) for problem in data["chains"][0]["problems"]}
    assert not passed
    assert {("signature", 2), ("link", 2)} <= kinds


def test_verify_audit_checks_only_the_tenant_asked_for(sealed):
    other = tenant_create(name="globex")
    write_records(events(2, "globex", tenant_id=other.id))
    audit_seal_run()
    AuditEvent.objects.filter(tenant_id=other.id).update(tool="edited")

    passed, data = verify("--tenant", "acme")
    failed, _ = verify("--since", (timezone.now() - timedelta(hours=1)).isoformat())

    assert passed and [chain["tenant"] for chain in data["chains"]] == ["acme"]
    assert not failed


def test_the_public_keys_are_published_at_well_known_audit_keys(transactional_db, client):
    response = client.get("/.well-known/audit-keys")

    assert response.status_code == 200
    assert response.json() == {
        "algorithm": "Ed25519",
        "keys": [
            {
                "key_id": parse_signing_key(KEY_A).key_id,
                "public_key": response.json()["keys"][0]["public_key"],
                "signing": True,
            }
        ],
    }


def test_the_admin_shows_each_tenants_seal_age_last_verification_and_the_keys(
    sealed, client, django_user_model
):
    verify()
    user = django_user_model.objects.create_superuser("root", "root@example.com", "pw-long-enough-123")
    client.force_login(user)

    page = client.get("/admin/audit/auditseal/").content.decode()

    assert "Seal age and last verification per tenant" in page
    assert "acme" in page and "verified" in page
    assert parse_signing_key(KEY_A).key_id in page


def test_calls_through_the_gateway_are_sealed_and_an_edited_tool_name_among_them_is_named(
    gateway, tenant, target
):
    issued = issue_credential(tenant, target, "POST /tools/search")

    async def agent() -> None:
        async with mcp_client(gateway.proxy_url("docs"), issued.token) as client:
            await client.call_tool("search", {"query": "gateways"})
            await client.call_tool("search", {"query": "seals"})

    run(agent())
    gateway.flush_audit()
    audit_seal_run()
    assert not AuditEvent.objects.filter(seal__isnull=True).exists()
    assert verify()[0]

    call = AuditEvent.objects.filter(kind="call", tool="search").order_by("id").first()
    AuditEvent.objects.filter(id=call.id).update(tool="delete_everything")

    passed, data = verify()
    assert not passed
    assert (first_problem(data)["kind"], first_problem(data)["event"]) == ("edited", call.id)
