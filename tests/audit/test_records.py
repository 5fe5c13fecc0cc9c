"""Every value of an audit record is made safe for its column before it reaches any database."""

from __future__ import annotations

import uuid

from audit.records import BIGINT_MAX, TRUNCATED, sanitise_record, sanitise_text


def test_nul_is_removed_from_every_string_json_values_included():
    safe = sanitise_record(
        {
            "path": "/mcp/docs/\x00admin",
            "request_id": "id\x00",
            "meter_notes": ["note\x00"],
            "response_values": {"k\x00": ["v\x00", {"deep": "\x00x"}]},
        }
    )
    assert safe["path"] == "/mcp/docs/admin"
    assert safe["request_id"] == "id"
    assert safe["meter_notes"] == ["note"]
    assert safe["response_values"] == {"k": ["v", {"deep": "x"}]}


def test_long_text_is_truncated_to_its_column_with_a_visible_marker():
    safe = sanitise_record({"path": "/" + "a" * 5000, "http_method": "VERYLONGMETHOD"})
    assert len(safe["path"]) == 2000
    assert safe["path"].endswith(TRUNCATED)
    assert safe["http_method"] == "VERYLONGME"


def test_sizes_are_clamped_to_the_column_range():
    for declared in (2**63, 2**64 - 1, 10**30):
        assert sanitise_record({"request_bytes": declared})["request_bytes"] == BIGINT_MAX
    assert sanitise_record({"response_bytes": -5})["response_bytes"] == 0
    assert sanitise_record({"request_bytes": "12"})["request_bytes"] == 0
    assert sanitise_record({"status_code": 70000})["status_code"] == 32767
    assert sanitise_record({"latency_ms": float("nan")})["latency_ms"] == 0.0


def test_client_ip_is_kept_only_when_it_is_an_address():
    assert sanitise_record({"client_ip": "203.0.113.9"})["client_ip"] == "203.0.113.9"
    assert sanitise_record({"client_ip": "fe80::1%eth0"})["client_ip"] == "fe80::1"
    assert sanitise_record({"client_ip": "not-an-ip\x00"})["client_ip"] is None


def test_json_fields_hold_only_json_safe_values():
    safe = sanitise_record(
        {"response_values": {"big": 2**70, "nan": float("nan"), "ok": 1.5}, "meter_notes": "not a list"}
    )
    assert safe["response_values"] == {"big": float(2**70), "nan": None, "ok": 1.5}
    assert safe["meter_notes"] == []


def test_unencodable_text_and_wrong_types_become_safe_text():
    assert sanitise_text("bad \udc80 surrogate", 100) == "bad ? surrogate"
    assert sanitise_text(None, 10) == ""
    assert sanitise_text(12345, 10) == "12345"


def test_event_id_and_decision_are_kept_when_valid():
    event_id = uuid.uuid4()
    safe = sanitise_record({"event_id": event_id.hex, "decision": "denied"})
    assert safe["event_id"] == event_id
    assert safe["decision"] == "denied"
    assert sanitise_record({"decision": "bogus"})["decision"] == "error"
