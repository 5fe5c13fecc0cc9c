"""Redaction benchmark: CPU per call for realistic 10 KB and 100 KB results, and hostile 1 MB strings.

Run by hand: ``.venv/bin/python bench/redaction_bench.py``. Prints, for every detector enabled and
the mask action, the CPU milliseconds per ``redact_json`` call (median of repeated runs) on an
MCP-style tool result sized about 10 KB and 100 KB, and the milliseconds ``redact_text`` takes on
1 MB strings built to make a careless regular expression backtrack. Targets from issue 8: 10 KB
under 1 ms, 100 KB under 5 ms (together with the filters, which are not measured here).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from policies.redaction import RedactionAction, RedactionMode, Redactor, resolve_detectors

HOSTILE = {
    "letters": "a" * 1_000_000,
    "digits": "1" * 1_000_000,
    "spaced digits": "1 " * 500_000,
    "at signs": "a@" * 500_000,
    "one long domain": "a@" + "b." * 499_999,
    "colons": "1:" * 500_000,
    "BEGIN lines": "-----BEGIN PRIVATE KEY-----" * 37_037,
    "JWT starts": "eyJ." * 250_000,
    "IBAN starts": "GB00 " * 200_000,
    "phone starts": "+1 " * 333_333,
    "key prefixes": "sk-" * 333_333,
    "dotted quads": "1.1.1.1." * 125_000,
}


def record(number: int) -> dict[str, object]:
    """One customer-like row, a few of which carry personal data or a secret."""
    row: dict[str, object] = {
        "id": f"cus_{number:08d}",
        "name": f"Customer {number}",
        "created": f"2026-11-{number % 28 + 1:02d}T10:{number % 60:02d}:00Z",
        "plan": "business" if number % 3 else "starter",
        "seats": number % 50,
        "active": number % 7 != 0,
        "notes": "Renewal discussed on the quarterly call; follow up about the invoice layout.",
        "tags": ["priority", "emea"] if number % 2 else ["standard"],
        "url": f"https://app.example.com/customers/{number}",
    }
    if number % 5 == 0:
        row["contact"] = {"email": f"person{number}@example.org", "phone": "+44 20 7946 0958"}
    if number % 17 == 0:
        row["payment"] = {"card": "4111 1111 1111 1111", "iban": "GB82 WEST 1234 5698 7654 32"}
    if number % 23 == 0:
        row["debug"] = "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl from 10.0.0.12"
    return row


def tool_result(target_bytes: int) -> dict[str, object]:
    """A ``tools/call`` result with ``structuredContent`` of about ``target_bytes`` serialised."""
    rows: list[dict[str, object]] = []
    while len(json.dumps(rows)) < target_bytes:
        rows.append(record(len(rows)))
    return {
        "content": [{"type": "text", "text": f"{len(rows)} customers"}],
        "structuredContent": {"rows": rows},
    }


def cpu_ms_per_call(redactor: Redactor, value: object, repeat: int) -> float:
    """Median process CPU milliseconds of one ``redact_json`` call over ``repeat`` batches."""
    batch = 20
    samples = []
    for _ in range(repeat):
        start = time.process_time()
        for _ in range(batch):
            redactor.redact_json(value)
        samples.append((time.process_time() - start) * 1000 / batch)
    return statistics.median(samples)


def main() -> None:
    """Print the figures."""
    detectors = resolve_detectors("all")
    enforce = Redactor(detectors=detectors, action=RedactionAction.MASK)
    monitor = Redactor(detectors=detectors, mode=RedactionMode.MONITOR)
    pseudonym = Redactor(detectors=detectors, action=RedactionAction.PSEUDONYM, key=b"k" * 32)
    print(f"Python {sys.version.split()[0]}, all {len(detectors)} detectors")
    for size in (10_000, 100_000):
        value = tool_result(size)
        actual = len(json.dumps(value))
        _, counts = enforce.redact_json(value)
        print(f"{actual / 1000:6.1f} KB result, {sum(counts.values())} values found {counts}")
        for label, redactor in (("mask", enforce), ("pseudonym", pseudonym), ("monitor", monitor)):
            print(f"    {label:10} {cpu_ms_per_call(redactor, value, 15):7.3f} ms CPU per call")
    print("1 MB hostile strings, redact_text, every detector:")
    for name, text in HOSTILE.items():
        start = time.perf_counter()
        enforce.redact_text(text)
        print(f"    {name:16} {(time.perf_counter() - start) * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
