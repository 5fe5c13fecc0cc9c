"""What response filters cost per call: a tools/call result under 10 JSON-path filters.

Run by hand from the repository root::

    .venv/bin/python bench/filter_bench.py [--seconds 2]

For a payload of 10 KB and of 100 KB (serialised), in three forms (the payload as
``structuredContent`` only, as JSON text content only, and both, which is what an MCP server
returning a dict sends), it prints the CPU time (``time.process_time``, user + system) per call of
``filter_message_bytes`` on the response body: parse, apply the 10 filters, write back ("body
ms"). It also prints the orjson share of that (read and write the body once, "json ms"), the
same body under 10 filters that match nothing ("no match ms": parse and walk, nothing written),
and a body that no filter applies to (returned as the very same bytes, without parsing).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from policies.content import compile_filter, filter_message_bytes  # noqa: E402

FILTER_PATHS = [
    ["$..id"],
    ["$.owner"],
    ["$.items[*].internal"],
    ["$..secret"],
    ["$.items[*].meta.created_by"],
    ["$.audit"],
    ["$.items[?(@.kind == 'internal')]"],
    ["$..token"],
    ["$.items[*].tags[0]"],
    ["$.next_cursor", "$.debug"],
]
NO_MATCH_PATHS = [[f"$.absent_{n}"] for n in range(9)] + [["$..absent"]]


def payload(items: int) -> dict[str, object]:
    """A search-like result: an owner, an audit block, and ``items`` records of about 270 bytes."""
    return {
        "id": "res-1",
        "owner": {"id": "usr-9", "email": "owner@example.com", "name": "Owner"},
        "audit": {"trace": "0123456789abcdef", "secret": "s3cr3t"},
        "next_cursor": "c-42",
        "items": [
            {
                "id": f"item-{n}",
                "name": f"Item number {n}",
                "kind": "internal" if n % 10 == 0 else "public",
                "description": "A plain description of the item, long enough to look like real data.",
                "tags": ["alpha", "beta", "gamma"],
                "internal": {"shard": n % 7, "row": n},
                "meta": {"created_by": {"id": "usr-1", "name": "x"}, "version": 3},
            }
            for n in range(items)
        ],
    }


def body(result_payload: dict[str, object], form: str) -> bytes:
    result: dict[str, object] = {"isError": False}
    if form in ("structured", "both"):
        result["structuredContent"] = result_payload
    text = orjson.dumps(result_payload).decode() if form in ("text", "both") else "done"
    result["content"] = [{"type": "text", "text": text}]
    return orjson.dumps({"jsonrpc": "2.0", "id": 1, "result": result})


def cpu_ms_per_call(call: Callable[[], object], seconds: float) -> float:
    call()
    calls = 0
    started = time.process_time()
    while (elapsed := time.process_time() - started) < seconds:
        call()
        calls += 1
    return elapsed / calls * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0, help="CPU seconds per figure")
    seconds = parser.parse_args().seconds
    filters = [compile_filter(filter_id=n, paths=p) for n, p in enumerate(FILTER_PATHS, start=1)]
    no_match = [compile_filter(filter_id=n, paths=p) for n, p in enumerate(NO_MATCH_PATHS, start=1)]
    methods = {1: "tools/call"}
    print(f"{'result':>7} {'form':>10} {'body KB':>8} {'removed':>8} {'body ms':>8} {'json ms':>8}", end="")
    print(f" {'no match ms':>11}")
    for items, label in ((38, "10 KB"), (380, "100 KB")):
        for form in ("structured", "text", "both"):
            raw = body(payload(items), form)
            _, outcome = filter_message_bytes(raw, methods, filters)
            removed = sum(count.removed for count in outcome.counts)
            whole = cpu_ms_per_call(partial(filter_message_bytes, raw, methods, filters), seconds)
            codec = cpu_ms_per_call(partial(_parse_and_write, raw), seconds)
            nothing = cpu_ms_per_call(partial(filter_message_bytes, raw, methods, no_match), seconds)
            size = len(raw) / 1024
            print(
                f"{label:>7} {form:>10} {size:>8.1f} {removed:>8} {whole:>8.3f} {codec:>8.3f} {nothing:>11.3f}"
            )
    raw = body(payload(380), "both")
    skipped = cpu_ms_per_call(lambda: filter_message_bytes(raw, methods, []), seconds)
    print(f"no filter applies (100 KB body, same bytes returned): {skipped * 1000:.3f} µs per call")


def _parse_and_write(raw: bytes) -> bytes:
    """The share of a call that is orjson: read the body and write it back."""
    return orjson.dumps(orjson.loads(raw))


if __name__ == "__main__":
    main()
