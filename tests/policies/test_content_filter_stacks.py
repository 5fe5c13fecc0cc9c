"""Filter stacks leave the same documents and counts as jsonpath-ng run path by path on a copy.

The filters share work between the paths and filters applied to one document (the list of its
containers, kept up to date as values are removed); these tests check that an agent still gets
exactly what each path, run afresh on the document as the filters before it left it, would leave:
nothing a filter removed is found or counted again, nothing else is lost.
"""

from __future__ import annotations

import copy
import random
import warnings

import orjson
import pytest
from jsonpath_ng.ext.parser import parse as jsonpath_ng_parse

from bench.filter_bench import FILTER_PATHS, NO_MATCH_PATHS
from bench.protection_gateway_bench import tool_payload
from policies.content import apply_filters, compile_filter, filter_message_bytes
from tests.policies.test_content_filters import SELECTED_PATHS

# The selection paths of test_content_filters.py, and descents and conditions that stacks exercise more.
SELECTION_PATHS = [
    *SELECTED_PATHS,
    "$..a",
    "$..ad",
    "$.*.a",
    "$..[1]",
    "$..[-1:]",
    "$..a..b",
    "$..[?(@.a == 1)]",
    "$..[?(@.b != 'a')]",
    "$..[?(@ > 1)]",
    "$..[?(@.a == @.b)]",
    "$..[?(!@.x || @.y <= 1)]",
    "$.a[*].b[0]",
    "$",
]
BENCH_PATHS = [path for paths in FILTER_PATHS + NO_MATCH_PATHS for path in paths]
ALL_PATHS = SELECTION_PATHS + BENCH_PATHS
KEYS = ["a", "b", "x", "id", "ad", "items", "internal", "shard", "kind", "name", "tags", "owner", "n", "m"]
SCALARS = [0, 1, 2, 2.0, "1", "2", "a", "secret", "internal", True, False, None]


def _locations(expression: str, document) -> list[tuple[object, object]]:
    """jsonpath-ng's matches as (container, key), each location once; (None, None) is the document."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # `&` in a condition
        tree = jsonpath_ng_parse(expression)
    found: dict[tuple[int, object], tuple[object, object]] = {}
    for datum in tree.find(document):
        if datum.context is None:
            found[(id(None), None)] = (None, None)
            continue
        container = datum.context.value
        path = datum.path
        key = path.fields[0] if hasattr(path, "fields") else path.indices[0] % len(container)
        found[(id(container), key)] = (container, key)
    return list(found.values())


def _remove(document, locations) -> None:
    """Delete each location: members by name, array elements from the highest position down."""
    positions: dict[int, tuple[list, set[int]]] = {}
    for container, key in locations:
        if container is None:
            document.clear()
        elif isinstance(container, dict):
            container.pop(key, None)  # gone already when the document was emptied
        else:
            positions.setdefault(id(container), (container, set()))[1].add(key)
    for array, indices in positions.values():
        for index in sorted(indices, reverse=True):
            del array[index]


def _reference(document, stack: list[tuple[list[str], str]]) -> list[int]:
    """Each filter's count, applying ``stack`` to ``document`` in place path by path, afresh each time."""
    counts = []
    for paths, mode in stack:
        if mode == "enforce":
            removed = 0
            for path in paths:
                locations = _locations(path, document)
                removed += len(locations)
                _remove(document, locations)
            counts.append(removed)
        else:
            seen = {(id(c), k) for path in paths for c, k in _locations(path, document)}
            counts.append(len(seen))
    return counts


def _filters(stack: list[tuple[list[str], str]]):
    return [
        compile_filter(filter_id=n, paths=paths, mode=mode) for n, (paths, mode) in enumerate(stack, start=1)
    ]


def _filtered(document, stack: list[tuple[list[str], str]]) -> list[int]:
    """What the gateway's filters do to ``document`` as structured content, in place: the counts."""
    outcome = apply_filters("tools/call", {"structuredContent": document}, _filters(stack))
    return [count.removed for count in outcome.counts]


def _random_value(rng: random.Random, depth: int = 0):
    if depth > 4 or rng.random() < 0.25:
        return rng.choice(SCALARS)
    if rng.random() < 0.4:
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(5))]
    return {rng.choice(KEYS): _random_value(rng, depth + 1) for _ in range(rng.randrange(1, 6))}


def _random_stack(rng: random.Random) -> list[tuple[list[str], str]]:
    return [
        (rng.sample(ALL_PATHS, rng.randrange(1, 4)), rng.choice(["enforce", "enforce", "monitor"]))
        for _ in range(rng.randrange(1, 8))
    ]


@pytest.mark.parametrize("seed", range(12))
def test_random_filter_stacks_leave_what_each_path_run_afresh_would_leave(seed):
    rng = random.Random(seed)
    for _ in range(60):
        document = {key: _random_value(rng) for key in rng.sample(KEYS, 5)}
        stack = _random_stack(rng)
        expected = copy.deepcopy(document)
        expected_counts = _reference(expected, stack)
        assert _filtered(document, stack) == expected_counts, stack
        assert document == expected, stack


@pytest.mark.parametrize(
    "stack",
    [
        [(paths, "enforce") for paths in FILTER_PATHS],
        [(paths, "monitor") for paths in FILTER_PATHS],
        [(paths, "enforce") for paths in NO_MATCH_PATHS],
        [(paths, "enforce") for paths in reversed(FILTER_PATHS)],
        [(["$.items[*].meta"], "enforce"), (["$..id", "$..created_by"], "enforce"), (["$..*"], "monitor")],
        [(["$.items[?(@.kind == 'internal')]"], "enforce"), (["$..internal", "$..shard"], "enforce")],
        [(["$..tags"], "enforce"), (["$..[0]", "$..[-1:]"], "enforce"), (["$"], "monitor")],
        [(["$..id"], "enforce"), (["$"], "enforce"), (["$..id", "$..*"], "enforce")],
    ],
    ids=["bench", "bench-monitor", "no-match", "bench-reversed", "meta", "kind", "arrays", "root"],
)
def test_the_benchmark_result_loses_what_each_path_run_afresh_would_remove(stack):
    payload = tool_payload(160)
    body = orjson.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "result": {
                "content": [{"type": "text", "text": orjson.dumps(payload).decode()}],
                "structuredContent": payload,
                "isError": False,
            },
        }
    )
    structured, text = copy.deepcopy(payload), copy.deepcopy(payload)
    expected_counts = [
        a + b for a, b in zip(_reference(structured, stack), _reference(text, stack), strict=True)
    ]
    expected = {
        "jsonrpc": "2.0",
        "id": 1,
        "result": {
            "content": [{"type": "text", "text": orjson.dumps(text).decode()}],
            "structuredContent": structured,
            "isError": False,
        },
    }

    forwarded, outcome = filter_message_bytes(body, {1: "tools/call"}, _filters(stack))

    assert [count.removed for count in outcome.counts] == expected_counts
    assert forwarded == orjson.dumps(expected)


def test_a_value_held_at_two_places_is_still_found_through_the_other_once_one_is_removed():
    shared = {"id": 1, "inner": {"token": "t"}}
    document = {"a": shared, "b": shared, "c": [shared]}
    stack = [
        (["$.a"], "enforce"),
        (["$..token"], "monitor"),
        (["$.c[0]"], "enforce"),
        (["$..token"], "enforce"),
    ]

    counts = _filtered(document, stack)

    assert counts == [1, 1, 1, 1]
    assert document == {"b": {"id": 1, "inner": {}}, "c": []}
