"""The PDF summary a reviewer hands an auditor: its figures, its chart, and its signed manifest."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pypdfium2
import pytest
from django.utils import timezone

from audit.exports.manifest import ExportScope
from audit.exports.pdf import CHART_COLOUR
from audit.exports.summary import export_summary
from audit.models import AuditEvent
from gateway.services import allow_rule_create, credential_revoke, credential_rotate
from tests.audit.export_helpers import export, public_key_file, verify
from tests.audit.helpers import record
from tests.conftest import issue_credential

REDACTED = {
    "filters": [{"filter": 1, "mode": "enforce", "removed": 3}],
    "redactions": [{"policy": 1, "mode": "enforce", "action": "mask", "kinds": {"email": 2, "iban": 1}}],
}


@pytest.fixture
def activity(transactional_db: None, tenant: Any, target: Any) -> dict[str, Any]:
    """Two agents' calls over three days (some denied, rate-limited or redacted), and a credential's
    lifecycle and a rule change in the change log."""
    from audit.writer import write_records

    now = timezone.now()
    alice = issue_credential(tenant, target, "POST /tools/search", name="alice").credential
    bob = issue_credential(tenant, target, "POST /tools/search", name="bob").credential
    credential_rotate(credential=bob)
    credential_revoke(credential=bob)
    allow_rule_create(credential=alice, method="POST", path="/tools/fetch")

    def call(credential: Any, days_ago: int, **fields: Any) -> dict[str, Any]:
        return record(
            "r",
            tenant_id=tenant.id,
            target_id=target.id,
            target_slug="docs",
            credential_id=credential.id,
            credential_name=credential.name,
            credential_prefix=credential.prefix,
            created_at=now - timedelta(days=days_ago, minutes=5),
            **fields,
        )

    records = (
        [call(alice, 2, tool="search") for _ in range(12)]
        + [call(alice, 1, tool="search", protections=REDACTED) for _ in range(4)]
        + [call(alice, 1, tool="fetch", decision="denied", reason="no rule allows", status_code=400)] * 3
        + [call(bob, 0, tool="search", decision="denied", reason="rate limited", status_code=429)] * 2
        + [call(bob, 0, tool="search") for _ in range(5)]
    )
    write_records([{**r, "request_id": f"r-{i}"} for i, r in enumerate(records)])
    return {"now": now, "alice": alice, "bob": bob, "tenant": tenant}


def scope_of(activity: dict[str, Any]) -> ExportScope:
    now = activity["now"]
    return ExportScope(
        tenant_id=activity["tenant"].id,
        tenant_name="acme",
        since=now - timedelta(days=3),
        until=now + timedelta(hours=1),
    )


def test_the_summary_counts_calls_per_agent_and_tool_denials_rate_limits_and_redactions(activity):
    summary = export_summary(scope_of(activity))

    assert summary.totals["calls"] == 26
    assert (summary.totals["denied"], summary.totals["rate_limited"], summary.totals["agents"]) == (5, 2, 2)
    agents = {
        row["credential_name"]: (row["calls"], row["denied"], row["rate_limited"])
        for row in summary.per_agent
    }
    assert agents == {"alice": (19, 3, 0), "bob": (7, 2, 2)}
    tools = {row["tool"]: row["calls"] for row in summary.per_tool}
    assert tools == {"search": 23, "fetch": 3}
    assert summary.denials_by_reason == [("no rule allows", 3), ("rate limited", 2)]
    assert summary.rate_limited_by_agent == [("bob", 2)]
    assert summary.redactions_by_kind == [("email", 8), ("iban", 4)]
    assert summary.filtered_items == 12
    assert [calls for _, calls, _ in summary.calls_per_day] == [12, 7, 7]


def test_the_summary_reads_the_credential_lifecycle_and_policy_changes_from_the_change_log(activity):
    summary = export_summary(scope_of(activity))

    steps = [(entry["object"].split(" ")[0], entry["step"]) for entry in summary.credential_lifecycle]
    assert steps == [("alice", "issued"), ("bob", "issued"), ("bob", "rotated"), ("bob", "revoked")]
    rules = [entry for entry in summary.policy_changes if entry["object_type"] == "allowrule"]
    assert len(rules) == 3  # the two credentials' rules and the one added later
    assert all(entry["action"] == "create" for entry in rules)


def test_the_pdf_renders_its_chart_on_page_one_and_names_the_controls(activity, tmp_path):
    now = activity["now"]
    path = tmp_path / "acme.pdf"
    export("acme", path, "pdf", since=now - timedelta(days=3), until=now + timedelta(hours=1))

    document = pypdfium2.PdfDocument(str(path))
    image = document[0].render(scale=1).to_pil().convert("RGB")
    chart = CHART_COLOUR.rgb()
    target = tuple(round(channel * 255) for channel in chart)
    raw = image.tobytes()
    pixels = [tuple(raw[index : index + 3]) for index in range(0, len(raw), 3)]
    chart_pixels = sum(
        1 for pixel in pixels if all(abs(a - b) <= 12 for a, b in zip(pixel, target, strict=True))
    )
    blank = sum(1 for pixel in pixels if pixel == (255, 255, 255))
    text = "".join(document[index].get_textpage().get_text_range() for index in range(len(document)))

    assert blank < len(pixels) * 0.98  # the page is not blank
    assert chart_pixels > 500  # the bars of calls per day are drawn, in the chart's colour
    assert "Audit summary: acme" in text
    assert "Control mapping" in text and "164.312(b)" in text and "A.8.15" in text


def test_a_pdf_export_verifies_and_fails_on_a_one_byte_change(activity, tmp_path):
    now = activity["now"]
    path = tmp_path / "acme.pdf"
    export("acme", path, "pdf", since=now - timedelta(days=3), until=now + timedelta(hours=1))
    key = public_key_file(tmp_path)

    ok, _ = verify(path, key)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    tampered, report = verify(path, key)

    assert ok
    assert not tampered
    assert report["problems"][0]["kind"] == "file"


def test_untrusted_names_are_escaped_in_the_pdf(activity, tmp_path):
    from audit.writer import write_records

    now = activity["now"]
    write_records(
        [record("evil", tenant_id=activity["tenant"].id, tool="<font size=80>x</font>&", created_at=now)]
    )
    path = tmp_path / "acme.pdf"
    export("acme", path, "pdf", since=now - timedelta(days=3), until=now + timedelta(hours=1))

    document = pypdfium2.PdfDocument(str(path))
    text = "".join(document[index].get_textpage().get_text_range() for index in range(len(document)))
    assert "<font size=80>x</font>&" in text
    assert AuditEvent.objects.filter(request_id="evil").exists()
