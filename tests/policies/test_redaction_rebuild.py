"""A redacted JSON value is what redacting each of its strings alone gives, and the value given is
never changed: only the containers on the way to a change are new, the others are shared."""

from __future__ import annotations

import copy
import random
import sys
from pathlib import Path

import pytest

from policies.redaction import DETECTORS, DROP, RedactionAction, Redactor

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from protection_gateway_bench import tool_result
from redaction_bench import tool_result as redaction_bench_result

SECRETS = ["person@example.org", "+44 20 7946 0958", "4111 1111 1111 1111", "10.0.0.12", "123-45-6789"]
PLAIN = ["alpha", "Item number 7", "2026-11-26", "", "a\x00b", "v1.2.3"]


def random_json(rng: random.Random, depth: int) -> object:
    """Nested dicts and lists of strings (a few holding a value to redact), numbers, booleans, None."""
    roll = rng.random()
    if depth and roll < 0.3:
        return {f"k{n}": random_json(rng, depth - 1) for n in range(rng.randint(0, 5))}
    if depth and roll < 0.5:
        return [random_json(rng, depth - 1) for _ in range(rng.randint(0, 5))]
    if roll < 0.6:
        return rng.choice([0, 1.5, True, None])
    if roll < 0.75:
        return f"see {rng.choice(SECRETS)} here"
    return rng.choice(PLAIN)


def each_string_alone(redactor: Redactor, value: object) -> object:
    """The oracle: every string redacted by itself, a dropped one removed with its field or item."""
    if isinstance(value, str):
        return redactor.redact_text(value)[0]
    if isinstance(value, dict):
        pairs = ((key, each_string_alone(redactor, item)) for key, item in value.items())
        return {key: item for key, item in pairs if item is not DROP}
    if isinstance(value, list):
        return [item for item in (each_string_alone(redactor, item) for item in value) if item is not DROP]
    return value


@pytest.mark.parametrize("action", [RedactionAction.MASK, RedactionAction.DROP])
def test_a_redacted_value_is_its_strings_redacted_one_by_one_and_the_input_is_left_alone(action):
    rng = random.Random(8)
    redactor = Redactor(tuple(DETECTORS.values()), action=action)
    values = [random_json(rng, 5) for _ in range(1500)]
    values += [tool_result(100_000), redaction_bench_result(10_000)]
    changed = 0
    for value in values:
        before = copy.deepcopy(value)
        # when
        redacted, _ = redactor.redact_json(value)
        # then
        assert redacted == each_string_alone(redactor, before)
        assert value == before
        changed += redacted is not value
    assert changed > 300


def test_containers_without_a_change_are_shared_and_those_on_the_way_to_one_are_new():
    # given
    value = {"a": {"deep": ["x", {"mail": "person@example.org"}]}, "b": {"plain": ["y"]}, "c": ["z"]}
    # when
    redacted, counts = Redactor((DETECTORS["email"],)).redact_json(value)
    # then
    assert counts == {"EMAIL": 1}
    assert redacted == {"a": {"deep": ["x", {"mail": "[REDACTED:EMAIL]"}]}, "b": {"plain": ["y"]}, "c": ["z"]}
    assert redacted is not value and redacted["a"] is not value["a"]
    assert redacted["a"]["deep"] is not value["a"]["deep"]
    assert redacted["b"] is value["b"] and redacted["c"] is value["c"]
    assert value["a"]["deep"][1] == {"mail": "person@example.org"}


def test_the_same_list_twice_in_a_value_is_redacted_at_each_place():
    shared = ["person@example.org", "plain"]
    redacted, counts = Redactor((DETECTORS["email"],)).redact_json({"one": shared, "two": shared, "n": 1})
    assert redacted == {"one": ["[REDACTED:EMAIL]", "plain"], "two": ["[REDACTED:EMAIL]", "plain"], "n": 1}
    assert counts == {"EMAIL": 2}
    assert shared == ["person@example.org", "plain"]
