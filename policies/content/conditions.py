"""Filter conditions (``[?(...)]``) compiled from jsonpath-ng's syntax tree, evaluated without it.

The semantics follow jsonpath-ng's extended parser (RFC 9535 comparisons): a missing member is
equal to nothing (only ``!=`` holds), a boolean is never equal to a number, only two numbers or
two strings are ordered (for other values ``<=`` and ``>=`` mean equality, ``<`` and ``>``
never hold), and a comparison holds when any value the target selects satisfies it.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from policies.content.selection import MISSING, Document, MemberChain

if TYPE_CHECKING:
    from policies.content.selection import Node, Selector

ORDERED: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
# For values that are not ordered, each operator as a function of "the two values are equal".
EQUALITY_ONLY: dict[str, Callable[[bool], bool]] = {
    "==": bool,
    "=": bool,
    "!=": operator.not_,
    "<": lambda equal: False,
    "<=": bool,
    ">": lambda equal: False,
    ">=": bool,
}


class Condition(Protocol):
    """Whether a candidate value passes one condition of a ``[?(...)]``."""

    def holds(self, value: Any) -> bool: ...


# A condition may use neither `$` nor `..` (refused when compiled): no step of its reads a document.
_NO_DOCUMENT = Document(None)


def _targets(selector: Selector, value: Any) -> list[Any]:
    if type(selector) is MemberChain:  # `@.a.b`: one value at most, found without building nodes
        found = selector.member_of(value)
        return [] if found is MISSING else [found]
    node: Node = (None, None, value)
    return [found for _, _, found in selector.select([node], _NO_DOCUMENT)]


@dataclass(frozen=True, slots=True)
class Exists:
    """``@.a``: the target selects something."""

    target: Selector

    def holds(self, value: Any) -> bool:
        return bool(_targets(self.target, value))


@dataclass(frozen=True, slots=True)
class Absent:
    """``!@.a``: the target selects nothing."""

    target: Selector

    def holds(self, value: Any) -> bool:
        return not _targets(self.target, value)


@dataclass(frozen=True, slots=True)
class CompareLiteral:
    """``@.a < 3``, ``@.kind == 'secret'``, ``@.x == null``."""

    target: Selector
    op: str
    literal: Any

    def holds(self, value: Any) -> bool:
        if type(self.target) is MemberChain:  # the common `@.kind == 'secret'`: one value at most
            item = self.target.member_of(value)
            return self.op == "!=" if item is MISSING else compare(self.op, item, self.literal)
        found = _targets(self.target, value)
        if not found:
            return self.op == "!="
        return any(compare(self.op, item, self.literal) for item in found)


@dataclass(frozen=True, slots=True)
class CompareQuery:
    """``@.a == @.b``: two empty selections are equal, an empty one equals nothing."""

    target: Selector
    op: str
    other: Selector

    def holds(self, value: Any) -> bool:
        found = _targets(self.target, value)
        others = _targets(self.other, value)
        if not found or not others:
            return EQUALITY_ONLY[self.op](not found and not others)
        return any(compare(self.op, item, other) for item in found for other in others)


@dataclass(frozen=True, slots=True)
class AllOf:
    """``a && b``."""

    conditions: tuple[Condition, ...]

    def holds(self, value: Any) -> bool:
        return all(condition.holds(value) for condition in self.conditions)


@dataclass(frozen=True, slots=True)
class AnyOf:
    """``a || b``."""

    conditions: tuple[Condition, ...]

    def holds(self, value: Any) -> bool:
        return any(condition.holds(value) for condition in self.conditions)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def compare(op: str, left: Any, right: Any) -> bool:
    """One comparison between two JSON values."""
    if type(left) is str and type(right) is str:  # the commonest case, first
        return ORDERED[op](left, right)
    if (_is_number(left) and _is_number(right)) or (isinstance(left, str) and isinstance(right, str)):
        return ORDERED[op](left, right)
    return EQUALITY_ONLY[op](json_equal(left, right))


def json_equal(left: Any, right: Any) -> bool:
    """JSON equality: ``true`` is not ``1``, deep for arrays and objects, without recursion."""
    pairs = [(left, right)]
    while pairs:
        a, b = pairs.pop()
        if isinstance(a, bool) or isinstance(b, bool):
            if a is not b:
                return False
        elif isinstance(a, list) and isinstance(b, list):
            if len(a) != len(b):
                return False
            pairs.extend(zip(a, b, strict=True))
        elif isinstance(a, dict) and isinstance(b, dict):
            if a.keys() != b.keys():
                return False
            pairs.extend((item, b[key]) for key, item in a.items())
        elif isinstance(a, (list, dict)) or isinstance(b, (list, dict)) or a != b:
            return False
    return True
