"""The built-in detectors' shortcuts (digit windows, shared scans) find exactly what a full scan finds.

Each built-in detector keeps ``find(text)``, the plain scan of the whole text; the redactor calls
``find_in(scan)``, which skips work. These tests run both on many generated texts and on the
benchmark payloads and ask for the very same spans, and the very same redactions and counts.
"""

from __future__ import annotations

import random
import re
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from policies.redaction import DETECTORS, Detector, RedactionAction, RedactionMode, Redactor, Span
from policies.redaction.api_keys import api_key_pattern, flat_api_key_pattern
from policies.redaction.detectors import TextScan, finder_of
from policies.redaction.redactor import VALUE_SEPARATOR

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from protection_gateway_bench import tool_result
from redaction_bench import HOSTILE
from redaction_bench import tool_result as redaction_bench_result

# Values each detector finds (from test_detectors.py), their near misses, and what lies around them.
VALUES = [
    "+14155552671", "+44 20 7946 0958", "+1 (415) 555-2671", "(415) 555-2671", "415-555-2671",
    "415.555.2671", "415 555 2671", "+1 2 3 4 5 6 7", "+33 1 23 45 67 89", "+49 (30) 1234567",
    "4111 1111 1111 1111", "4242-4242-4242-4242", "5555555555554444", "378282246310005",
    "4111 1111 1111 1112", "123-45-6789", "123 45 6789", "000-12-3456", "123-45 6789", "078-05-1120",
    "10.0.0.12", "255.255.255.255", "192.168.1.10", "256.1.1.1", "1.2.3.4.5", "01.02.03.04",
    "::ffff:192.0.2.1", "2001:db8::8a2e:370:7334", "fe80::1", "10:30:45", "GB82 WEST 1234 5698 7654 32",
    "GB82WEST12345698765432", "DE89 3704 0044 0532 0130 00", "NO9386011117947", "2026-11-26",
    "2026-11-26T10:30:00Z", "v1.2.3", "order 12345", "+12", "id 4155552671123456789",
    "person@example.org", "AKIAIOSFODNN7EXAMPLE", "sk-ant-" + "a" * 24, "ghp_" + "b" * 36,
]  # fmt: skip
PIECES = [
    *"0123456789",
    *"0123456789",
    *" ().+-",
    *"ab_Z:,\"'{}[]/#\x00é٣²\ud800😀",
    "  ",
    "--",
    "..",
    "++",
    "((",
    "GB",
    "DE8",
    "X",
    "WEST ",
]
KINDS = ("phone", "card", "ssn", "ip", "iban")


def generated_text(rng: random.Random) -> str:
    """A random mix of sample values, digits, the separators of numbers, letters and JSON punctuation."""
    parts = []
    for _ in range(rng.randint(0, 30)):
        if rng.random() < 0.2:
            value = rng.choice(VALUES)
            # A value cut short or run on is a near miss at its edges.
            parts.append(value[rng.randint(0, 2) : len(value) - rng.randint(0, 2)])
        else:
            parts.append(rng.choice(PIECES))
    return "".join(parts)


def full_scan(detector: Detector, text: str) -> list[Span]:
    return list(detector.find(text))


def shortcut(detector: Detector, text: str) -> list[Span]:
    return list(finder_of(detector)(TextScan(text)))


def test_every_built_in_detector_finds_the_same_spans_with_its_shortcuts_in_generated_texts():
    # given many texts, values often at their very start or end
    rng = random.Random(8)
    texts = [generated_text(rng) for _ in range(6000)]
    found: Counter[str] = Counter()
    # when / then
    for text in texts:
        for name, detector in DETECTORS.items():
            expected = full_scan(detector, text)
            assert shortcut(detector, text) == expected, (name, text)
            found[name] += len(expected)
    # the texts exercise every digit detector, not only their misses
    assert all(found[name] > 50 for name in KINDS), found


@pytest.mark.parametrize(
    "text",
    [
        "NO9386011117947 DE89 3704 0044 0532 0130 00",
        "XGB82WEST12345698765432 GB82WEST12345698765432",
        "415-555-2671",
        "a415-555-2671",
        "10.0.0.12.5 1.2.3.4",
        "+1 (415) 555-2671+44 20 7946 0958",
        "4111 1111 1111 1111 1111 1111 1111",
        "123-45-6789-0 123-45-6789",
    ],
)
def test_values_at_the_text_edges_and_overlapping_candidates_give_the_same_spans(text):
    for name, detector in DETECTORS.items():
        assert shortcut(detector, text) == full_scan(detector, text), name


@pytest.mark.parametrize("size", [10_000, 100_000])
def test_the_benchmark_payloads_give_the_same_spans_with_the_shortcuts(size):
    for result in (tool_result(size), redaction_bench_result(size)):
        text = VALUE_SEPARATOR.join(_strings(result))
        for name, detector in DETECTORS.items():
            assert shortcut(detector, text) == full_scan(detector, text), name


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_strings_give_the_same_spans_with_the_shortcuts(name):
    text = HOSTILE[name][:20_000]
    for detector in (DETECTORS[kind] for kind in KINDS):
        assert shortcut(detector, text) == full_scan(detector, text)


@dataclass(frozen=True, slots=True)
class FullScanOnly:
    """A built-in detector seen as a plug-in: the redactor can only call ``find`` on the whole text."""

    detector: Detector

    @property
    def name(self) -> str:
        return self.detector.name

    @property
    def kind(self) -> str:
        return self.detector.kind

    def find(self, text: str) -> Iterable[Span]:
        return self.detector.find(text)


@pytest.mark.parametrize("action", list(RedactionAction))
@pytest.mark.parametrize("size", [10_000, 100_000])
def test_a_redactor_gives_the_same_result_and_counts_as_with_full_scans(action, size):
    # given the redactor as it runs, and one whose detectors can only scan the whole text
    detectors = tuple(DETECTORS.values())
    key = b"k" * 32
    fast = Redactor(detectors, action=action, key=key)
    plain = Redactor(tuple(map(FullScanOnly, detectors)), action=action, key=key)
    for result in (tool_result(size), redaction_bench_result(size)):
        before = orjson.dumps(result)
        # when
        redacted, counts = fast.redact_json(result)
        # then
        assert (redacted, counts) == plain.redact_json(result)
        assert sum(counts.values()) > 20
        assert orjson.dumps(result) == before


def test_a_monitor_redactor_counts_the_same_as_with_full_scans():
    detectors = tuple(DETECTORS.values())
    result = tool_result(100_000)
    fast = Redactor(detectors, mode=RedactionMode.MONITOR)
    plain = Redactor(tuple(map(FullScanOnly, detectors)), mode=RedactionMode.MONITOR)
    assert fast.redact_json(result) == plain.redact_json(result)


def test_a_plug_in_detector_is_called_with_the_whole_text():
    # given a plug-in detector that records what it sees
    seen: list[str] = []

    @dataclass(frozen=True, slots=True)
    class Recording:
        name: str = "rec"
        kind: str = "REC"

        def find(self, text: str) -> Iterable[Span]:
            seen.append(text)
            return [(0, 1)] if text else []

    # when
    redacted, counts = Redactor((DETECTORS["phone"], Recording())).redact_text("call 415-555-2671 now")
    # then
    assert seen == ["call 415-555-2671 now"]
    assert redacted == "[REDACTED:REC]all [REDACTED:PHONE] now"
    assert counts == {"REC": 1, "PHONE": 1}


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return []


KEY_VALUES = [
    "AKIAIOSFODNN7EXAMPLE", "ASIA" + "Z" * 16, "ghp_" + "a" * 36, "github_pat_" + "b" * 22, "glpat-" + "c" * 20,
    "gldt-" + "d" * 20, "xoxb-" + "1" * 10, "xapp-1-" + "e" * 10, "https://hooks.slack.com/services/" + "T" * 20,
    "sk_live_" + "f" * 10, "rk_test_" + "g" * 10, "pk_live_" + "h" * 10, "whsec_" + "i" * 20,
    "sk-ant-" + "j" * 20, "sk-proj-" + "k" * 20, "sk-" + "l" * 20, "AIza" + "m" * 35, "hf_" + "n" * 30,
    "npm_" + "o" * 36, "pypi-AgEIcHlwaS5vcmc" + "p" * 50, "SG." + "q" * 22 + "." + "r" * 43,
    "dop_v1_" + "a" * 64, "gsk_" + "s" * 52, "xai-" + "t" * 80, "shpat_" + "b" * 32,
]  # fmt: skip


def test_the_api_key_formats_grouped_by_first_character_match_like_the_flat_alternation():
    # given texts of key formats, cut short or run on, amid letters and punctuation
    rng = random.Random(8)
    grouped, flat = re.compile(api_key_pattern()), re.compile(flat_api_key_pattern())
    pieces = [*"AgxshprwnSdk_-./:", "sk", "gh", "xo", "ab", " ", "\x00"]
    matched = 0
    for _ in range(6000):
        parts = []
        for _ in range(rng.randint(0, 12)):
            if rng.random() < 0.3:
                key = rng.choice(KEY_VALUES)
                parts.append(key[: len(key) - rng.randint(0, 3)] + rng.choice(["", "x", "-", "_", "9"]))
            else:
                parts.append(rng.choice(pieces))
        text = "".join(parts)
        # when / then
        expected = [match.span() for match in flat.finditer(text)]
        assert [match.span() for match in grouped.finditer(text)] == expected, text
        matched += len(expected)
    assert matched > 3000
