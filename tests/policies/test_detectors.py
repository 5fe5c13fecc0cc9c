"""Redaction detectors and the compiled redactor (issue 8, required behaviour 2)."""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass

import pytest

from policies.redaction import (
    DETECTORS,
    DROP,
    Detector,
    RedactionAction,
    RedactionDepthError,
    RedactionMode,
    Redactor,
    resolve_detectors,
)

KEY = b"tenant-key-0123456789abcdef"


def found(name: str, text: str) -> list[str]:
    """The values the named detector finds in ``text``."""
    return [text[start:end] for start, end in DETECTORS[name].find(text)]


def b64url(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


JWT = f"{b64url({'alg': 'HS256', 'typ': 'JWT'})}.{b64url({'sub': '42'})}.c2lnbmF0dXJlLWJ5dGVz"


# --- the registry -----------------------------------------------------------------------------


def test_registry_offers_the_detector_names_the_issue_lists():
    assert list(DETECTORS) == ["email", "phone", "card", "iban", "ssn", "ip", "jwt", "private_key", "api_key"]
    assert all(isinstance(detector, Detector) for detector in DETECTORS.values())


def test_resolving_a_comma_separated_list_keeps_the_order_given():
    assert [d.name for d in resolve_detectors("card, Email")] == ["card", "email"]


def test_resolving_all_gives_every_detector_once():
    assert [d.name for d in resolve_detectors("email,all")] == list(DETECTORS)
    assert [d.name for d in resolve_detectors(["all"])] == list(DETECTORS)


def test_an_unknown_detector_name_is_refused_with_the_valid_names():
    with pytest.raises(ValueError, match=r"unknown detector 'passport'; valid names: email, phone, .*, all"):
        resolve_detectors("email,passport")


def test_an_empty_detector_list_is_refused():
    with pytest.raises(ValueError, match="no detector named"):
        resolve_detectors(" , ")


# --- the rule-based detectors -----------------------------------------------------------------


def test_email_addresses_are_found_in_running_text():
    text = "write to jane.doe+news@mail.example.co.uk, or a@b.example."
    assert found("email", text) == ["jane.doe+news@mail.example.co.uk", "a@b.example"]


def test_email_lookalikes_are_not_found():
    assert found("email", "user@localhost, @handle, a@b, name@ example.com, x@-bad.example") == []


@pytest.mark.parametrize(
    "phone",
    [
        "+14155552671",
        "+44 20 7946 0958",
        "+1 (415) 555-2671",
        "(415) 555-2671",
        "415-555-2671",
        "415.555.2671",
    ],
)
def test_phone_numbers_in_international_and_north_american_formats_are_found(phone):
    assert found("phone", f"call {phone} today") == [phone]


@pytest.mark.parametrize(
    "text", ["2026-11-26", "192.168.1.10", "order 12345", "+12", "id 4155552671123456789", "v1.2.3"]
)
def test_dates_addresses_and_short_numbers_are_not_phone_numbers(text):
    assert found("phone", text) == []


@pytest.mark.parametrize(
    "card", ["4111 1111 1111 1111", "4242-4242-4242-4242", "5555555555554444", "378282246310005"]
)
def test_card_numbers_passing_luhn_are_found(card):
    assert found("card", f"paid with {card}.") == [card]


def test_card_numbers_failing_luhn_are_not_found():
    assert found("card", "paid with 4111 1111 1111 1112 and 5555555555554445") == []


def test_a_card_number_inside_a_longer_digit_run_is_not_found():
    assert found("card", "tracking 904111111111111111177") == []


@pytest.mark.parametrize(
    "iban",
    [
        "GB82 WEST 1234 5698 7654 32",
        "GB82WEST12345698765432",
        "DE89 3704 0044 0532 0130 00",
        "FR14 2004 1010 0505 0001 3M02 606",
        "NO9386011117947",
    ],
)
def test_ibans_with_a_valid_checksum_are_found(iban):
    assert found("iban", f"pay to {iban} please") == [iban]


def test_an_iban_followed_by_more_capitals_ends_at_its_country_length():
    assert found("iban", "GB82 WEST 1234 5698 7654 32 OK") == ["GB82 WEST 1234 5698 7654 32"]


@pytest.mark.parametrize(
    "text",
    [
        "GB82 WEST 1234 5698 7654 33",
        "GB82 WEST 1234 5698 7654",
        "ZZ82 WEST 1234 5698 7654 32",
        "XGB82WEST12345698765432",
    ],
)
def test_ibans_with_a_bad_checksum_length_or_country_are_not_found(text):
    assert found("iban", text) == []


def test_us_social_security_numbers_are_found():
    assert found("ssn", "SSN 123-45-6789 or 078 05 1120") == ["123-45-6789", "078 05 1120"]


@pytest.mark.parametrize(
    "text",
    [
        "000-12-3456",
        "666-12-3456",
        "912-34-5678",
        "123-00-4567",
        "123-45-0000",
        "123-45 6789",
        "1123-45-6789",
    ],
)
def test_invalid_social_security_numbers_are_not_found(text):
    assert found("ssn", text) == []


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.12",
        "255.255.255.255",
        "2001:db8::8a2e:370:7334",
        "::1",
        "fe80::1",
        "::ffff:192.0.2.1",
        "2001:db8::",
        "1:2:3:4:5:6:7:8",
        "1:2:3:4:5:6:1.2.3.4",
    ],
)
def test_ipv4_and_ipv6_addresses_are_found(address):
    assert found("ip", f"from {address}, again") == [address]


def test_a_full_ipv6_address_is_found_whole():
    address = "2001:0db8:85a3:0000:0000:8a2e:0370:7334"
    assert found("ip", f"[{address}]") == [address]


@pytest.mark.parametrize(
    "text", ["256.1.1.1", "1.2.3.4.5", "01.02.03.04", "10:30:45", "00:1A:2B:3C:4D:5E", "std::vector", "v1.2"]
)
def test_invalid_addresses_versions_times_and_mac_addresses_are_not_ips(text):
    assert found("ip", text) == []


def test_a_jwt_whose_header_names_an_algorithm_is_found():
    assert found("jwt", f"Bearer {JWT}") == [JWT]


def test_jwt_lookalikes_are_not_found():
    no_alg = f"{b64url({'typ': 'JWT'})}.{b64url({'sub': '42'})}.sig"
    not_json = "eyJub3QganNvbg.eyJzdWIiOiI0MiJ9.sig"
    assert found("jwt", f"{no_alg} {not_json} eyJonlyonepart") == []


@pytest.mark.parametrize("kind", ["RSA ", "EC ", "OPENSSH ", "ENCRYPTED ", "DSA ", ""])
def test_pem_private_key_blocks_of_any_type_are_found(kind):
    block = f"-----BEGIN {kind}PRIVATE KEY-----\nMIIEowIBAAKCAQEA0Z3VS5JJcds3\nxfn/ygWyF8PbnGy0AHB7=\n-----END {kind}PRIVATE KEY-----"
    assert found("private_key", f"key:\n{block}\nthanks") == [block]


def test_an_encrypted_pem_key_with_headers_and_a_pgp_key_block_are_found():
    pem = (
        "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: DES-EDE3-CBC,3F17F5316E2BAC89\n\n"
        "MIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----"
    )
    pgp = "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBF0=\n=abcd\n-----END PGP PRIVATE KEY BLOCK-----"
    assert found("private_key", f"{pem}\n{pgp}") == [pem, pgp]


def test_a_truncated_private_key_and_one_with_escaped_newlines_are_found():
    truncated = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC"
    escaped = r"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADAN\n-----END PRIVATE KEY-----"
    assert found("private_key", truncated) == [truncated]
    assert found("private_key", f'{{"key": "{escaped}"}}') == [escaped]


def test_public_keys_and_certificates_are_not_private_keys():
    text = "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n-----BEGIN CERTIFICATE-----\nMIIC"
    assert found("private_key", text) == []


API_KEYS = [
    "AKIAIOSFODNN7EXAMPLE",
    "ASIAY34FZKBOKMUTVV7A",
    "ghp_" + "a1B2" * 9,
    "gho_" + "Z" * 36,
    "ghs_" + "9" * 36,
    "ghu_" + "x" * 40,
    "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
    "glpat-" + "A1b2C3d4E5f6G7h8I9j0",
    "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
    "xoxp-1234567890-abcdef",
    "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
    "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc",
    "rk_live_" + "a" * 24,
    "pk_live_" + "b" * 24,
    "sk-" + "A" * 48,
    "sk-proj-" + "abc_DEF-123" * 5,
    "sk-ant-api03-" + "x" * 93 + "AA",
    "AIza" + "SyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"[:35],
    "hf_" + "a" * 34,
    "npm_" + "b" * 36,
    "SG." + "c" * 22 + "." + "d" * 43,
    "dop_v1_" + "e" * 64,
    "gsk_" + "f" * 52,
    "shpat_" + "0" * 32,
]


@pytest.mark.parametrize("key", API_KEYS)
def test_api_keys_in_common_formats_are_found(key):
    assert found("api_key", f'"token": "{key}",') == [key]


@pytest.mark.parametrize(
    "text",
    [
        "AKIA1234",
        "ghp_short",
        "sk-tooshort",
        "task-force-assignment-planning",
        "mysk_live_" + "a" * 24,
        "xAKIAIOSFODNN7EXAMPLE",
    ],
)
def test_short_or_embedded_key_prefixes_are_not_api_keys(text):
    assert found("api_key", text) == []


# --- the redactor: actions and modes -----------------------------------------------------------


def test_mask_replaces_each_value_with_its_kind_and_counts_it():
    redactor = Redactor(detectors=resolve_detectors("all"))
    text = f"mail a@b.example, card 4111 1111 1111 1111, key AKIAIOSFODNN7EXAMPLE, token {JWT}"
    redacted, counts = redactor.redact_text(text)
    assert redacted == (
        "mail [REDACTED:EMAIL], card [REDACTED:CARD], key [REDACTED:API_KEY], token [REDACTED:JWT]"
    )
    assert counts == {"EMAIL": 1, "CARD": 1, "API_KEY": 1, "JWT": 1}


def test_text_without_sensitive_values_is_returned_unchanged_with_no_counts():
    redactor = Redactor(detectors=resolve_detectors("all"))
    assert redactor.redact_text("nothing to see here, order 42") == ("nothing to see here, order 42", {})


def test_a_pseudonym_is_the_same_for_the_same_value_and_key():
    redactor = Redactor(detectors=resolve_detectors("email"), action=RedactionAction.PSEUDONYM, key=KEY)
    first, _ = redactor.redact_text("a@b.example")
    again, counts = redactor.redact_text("to a@b.example and a@b.example")
    assert re.fullmatch(r"\[EMAIL:[0-9a-f]{8}\]", str(first))
    assert again == f"to {first} and {first}"
    assert counts == {"EMAIL": 2}


def test_a_pseudonym_differs_between_values_and_between_tenant_keys():
    email = resolve_detectors("email")
    tenant_a = Redactor(detectors=email, action=RedactionAction.PSEUDONYM, key=KEY)
    tenant_b = Redactor(detectors=email, action=RedactionAction.PSEUDONYM, key=KEY[::-1])
    assert tenant_a.redact_text("a@b.example")[0] != tenant_a.redact_text("c@d.example")[0]
    assert tenant_a.redact_text("a@b.example")[0] != tenant_b.redact_text("a@b.example")[0]


def test_the_pseudonym_action_needs_a_tenant_key():
    with pytest.raises(ValueError, match="at least 16 bytes"):
        Redactor(detectors=resolve_detectors("email"), action=RedactionAction.PSEUDONYM, key=b"short")


def test_the_tenant_key_is_not_shown_in_the_redactor_repr():
    redactor = Redactor(detectors=resolve_detectors("email"), action=RedactionAction.PSEUDONYM, key=KEY)
    assert KEY.decode() not in repr(redactor)


def test_drop_returns_the_drop_marker_for_a_string_holding_a_value():
    redactor = Redactor(detectors=resolve_detectors("email"), action=RedactionAction.DROP)
    assert redactor.redact_text("owner a@b.example") == (DROP, {"EMAIL": 1})
    assert redactor.redact_text("no owner") == ("no owner", {})


def test_drop_removes_the_fields_and_list_items_holding_values():
    redactor = Redactor(detectors=resolve_detectors("email,card"), action=RedactionAction.DROP)
    value = {
        "id": "int-123",
        "owner": {"email": "a@b.example", "name": "Ann"},
        "items": ["ok", "4111111111111111", 7],
    }
    redacted, counts = redactor.redact_json(value)
    assert redacted == {"id": "int-123", "owner": {"name": "Ann"}, "items": ["ok", 7]}
    assert counts == {"EMAIL": 1, "CARD": 1}


def test_drop_of_a_top_level_string_returns_the_drop_marker():
    redactor = Redactor(detectors=resolve_detectors("email"), action=RedactionAction.DROP)
    assert redactor.redact_json("a@b.example") == (DROP, {"EMAIL": 1})


def test_monitor_mode_changes_nothing_and_counts_what_it_would_have_changed():
    value = {"owner": {"email": "a@b.example"}, "cards": ["4111 1111 1111 1111", "5555555555554444"]}
    for action in RedactionAction:
        redactor = Redactor(
            detectors=resolve_detectors("all"), action=action, mode=RedactionMode.MONITOR, key=KEY
        )
        redacted, counts = redactor.redact_json(value)
        assert redacted is value
        assert counts == {"EMAIL": 1, "CARD": 2}
        assert redactor.redact_text("a@b.example") == ("a@b.example", {"EMAIL": 1})


def test_counts_never_contain_the_values_themselves():
    secret = "AKIAIOSFODNN7EXAMPLE"
    for action in RedactionAction:
        redactor = Redactor(detectors=resolve_detectors("all"), action=action, key=KEY)
        redacted, counts = redactor.redact_json({"k": f"key {secret}"})
        assert secret not in json.dumps(counts)
        assert secret not in json.dumps(redacted, default=repr)


def test_actions_and_modes_may_be_given_by_their_names():
    redactor = Redactor(detectors=resolve_detectors("ip"), action="pseudonym", mode="monitor", key=KEY)  # type: ignore[arg-type]
    assert (redactor.action, redactor.mode) == (RedactionAction.PSEUDONYM, RedactionMode.MONITOR)
    with pytest.raises(ValueError, match="'hide'"):
        Redactor(detectors=resolve_detectors("ip"), action="hide")  # type: ignore[arg-type]


def test_a_redactor_needs_a_detector_and_is_immutable():
    with pytest.raises(ValueError, match="at least one detector"):
        Redactor(detectors=())
    redactor = Redactor(detectors=resolve_detectors("ip"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        redactor.mode = RedactionMode.MONITOR  # type: ignore[misc]


# --- the redactor: JSON values -------------------------------------------------------------


def test_every_string_of_a_json_value_is_redacted_and_keys_and_other_values_are_kept():
    redactor = Redactor(detectors=resolve_detectors("all"))
    value = {
        "a@b.example": "key stays",
        "owner": {"email": "a@b.example", "age": 41, "vip": True, "note": None},
        "content": [{"type": "text", "text": "call +1 (415) 555-2671"}, 3.5],
    }
    original = copy.deepcopy(value)
    redacted, counts = redactor.redact_json(value)
    assert redacted == {
        "a@b.example": "key stays",
        "owner": {"email": "[REDACTED:EMAIL]", "age": 41, "vip": True, "note": None},
        "content": [{"type": "text", "text": "call [REDACTED:PHONE]"}, 3.5],
    }
    assert counts == {"EMAIL": 1, "PHONE": 1}
    assert value == original


def test_a_json_value_without_findings_is_returned_as_is():
    value = {"items": [{"id": 1, "name": "lamp"}], "total": "12.50"}
    redacted, counts = Redactor(detectors=resolve_detectors("all")).redact_json(value)
    assert redacted is value
    assert counts == {}


def test_a_value_spanning_two_json_strings_is_not_found_across_them():
    redactor = Redactor(detectors=resolve_detectors("card,email"))
    redacted, counts = redactor.redact_json(["4111 1111", "1111 1111", "a@", "b.example"])
    assert redacted == ["4111 1111", "1111 1111", "a@", "b.example"]
    assert counts == {}


def test_a_string_holding_a_nul_character_is_redacted_like_any_other():
    redactor = Redactor(detectors=resolve_detectors("email"))
    assert redactor.redact_json(["x\x00a@b.example", "y"]) == (["x\x00[REDACTED:EMAIL]", "y"], {"EMAIL": 1})


def test_json_nested_deeper_than_the_limit_is_refused():
    value: object = "a@b.example"
    for _ in range(5):
        value = [value]
    assert Redactor(detectors=resolve_detectors("email"), max_depth=5).redact_json(value)[1] == {"EMAIL": 1}
    with pytest.raises(RedactionDepthError):
        Redactor(detectors=resolve_detectors("email"), max_depth=4).redact_json(value)


def test_a_hostile_deeply_nested_value_is_refused_without_recursion_error():
    value: object = "x"
    for _ in range(100_000):
        value = {"k": value}
    with pytest.raises(RedactionDepthError):
        Redactor(detectors=resolve_detectors("all")).redact_json(value)


# --- the redactor: overlapping spans and plug-in detectors --------------------------------------


@dataclass(frozen=True, slots=True)
class FixedSpans:
    """A toy detector reporting given spans, whatever the text."""

    name: str
    kind: str
    spans: tuple[tuple[int, int], ...]

    def find(self, text: str) -> Iterable[tuple[int, int]]:
        return self.spans


def test_overlapping_spans_are_redacted_once_under_the_longest_kind():
    short = FixedSpans("short", "SHORT", ((0, 4),))
    long = FixedSpans("long", "LONG", ((2, 10),))
    redacted, counts = Redactor(detectors=(short, long)).redact_text("0123456789 tail")
    assert (redacted, counts) == ("[REDACTED:LONG] tail", {"LONG": 1})


def test_equally_long_overlapping_spans_go_to_the_first_start_then_the_first_detector():
    first = FixedSpans("first", "FIRST", ((0, 4),))
    second = FixedSpans("second", "SECOND", ((0, 4), (2, 6)))
    assert Redactor(detectors=(first, second)).redact_text("abcdefgh") == ("[REDACTED:FIRST]gh", {"FIRST": 1})


def test_adjacent_spans_stay_separate_redactions():
    detector = FixedSpans("pair", "PAIR", ((0, 2), (2, 4)))
    assert Redactor(detectors=(detector,)).redact_text("abcd") == (
        "[REDACTED:PAIR][REDACTED:PAIR]",
        {"PAIR": 2},
    )


def test_a_value_found_by_two_detectors_is_counted_once_under_the_longer_kind():
    # The AWS key id is also the local part of an e-mail address: one redaction, one count.
    redactor = Redactor(detectors=resolve_detectors("api_key,email"))
    redacted, counts = redactor.redact_text("AKIAIOSFODNN7EXAMPLE@corp.example and AKIAIOSFODNN7EXAMPLE")
    assert redacted == "[REDACTED:EMAIL] and [REDACTED:API_KEY]"
    assert counts == {"EMAIL": 1, "API_KEY": 1}


@pytest.mark.parametrize("span", [(-1, 2), (3, 3), (2, 99), (1.0, 2), ("0", "1"), (0, 1, 2)])
def test_a_detector_returning_an_invalid_span_is_reported_by_name(span):
    broken = FixedSpans("broken", "BROKEN", (span,))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="detector 'broken' returned"):
        Redactor(detectors=(broken,)).redact_text("0123456789")


def test_an_object_that_is_not_a_detector_is_refused():
    with pytest.raises(ValueError, match="is not a detector"):
        Redactor(detectors=("email",))  # type: ignore[arg-type]


def test_a_span_across_two_json_strings_is_split_into_both():
    everything = FixedSpans("all_text", "ALL", ((0, 7),))  # "abc" NUL "def"
    assert Redactor(detectors=(everything,)).redact_json(["abc", "def"]) == (
        ["[REDACTED:ALL]", "[REDACTED:ALL]"],
        {"ALL": 2},
    )


@dataclass(frozen=True, slots=True)
class PersonNames:
    """A stand-in for a model-based entity recogniser: tags capitalised known first names + surname."""

    known_first_names: frozenset[str]
    name: str = "person"
    kind: str = "PERSON"

    def find(self, text: str) -> Iterable[tuple[int, int]]:
        for match in re.finditer(r"\b([A-Z][a-z]+) [A-Z][a-z]+\b", text):
            if match.group(1) in self.known_first_names:
                yield match.span()


def test_a_model_based_recogniser_plugs_in_as_one_more_detector():
    detectors = (*resolve_detectors("email"), PersonNames(frozenset({"Ada", "Alan"})))
    redactor = Redactor(detectors=detectors, action=RedactionAction.PSEUDONYM, key=KEY)
    redacted, counts = redactor.redact_json({"note": "Ada Lovelace wrote to Alan Turing at at@x.example"})
    assert re.fullmatch(r"\[PERSON:\w{8}\] wrote to \[PERSON:\w{8}\] at \[EMAIL:\w{8}\]", redacted["note"])  # type: ignore[index]
    assert counts == {"PERSON": 2, "EMAIL": 1}


# --- hostile input ----------------------------------------------------------------------------

HOSTILE = {
    "letters": "a" * 1_000_000,
    "digits": "1" * 1_000_000,
    "spaced digits": "1 " * 500_000,
    "at signs": "a@" * 500_000,
    "one long domain": "a@" + "b." * 499_999,
    "colons": "1:" * 500_000,
    "hex colons": "ab:" * 333_333,
    "BEGIN lines": "-----BEGIN PRIVATE KEY-----" * 37_037,
    "JWT starts": "eyJ." * 250_000,
    "IBAN starts": "GB00 " * 200_000,
    "phone starts": "+1 " * 333_333,
    "key prefixes": "sk-" * 333_333,
    "dotted quads": "1.1.1.1." * 125_000,
    "dashes": "-" * 1_000_000,
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_megabyte_string_is_scanned_in_linear_time(name):
    redactor = Redactor(detectors=resolve_detectors("all"))
    start = time.process_time()
    redactor.redact_text(HOSTILE[name])
    # Linear scans take ~0.02-0.2 s here; a backtracking pattern would take minutes.
    assert time.process_time() - start < 2.0
