"""JSON paths for response filters: parsed once by jsonpath-ng, then run by our own linear selectors.

An admin writes a path in jsonpath-ng's extended syntax (``$..id``, ``$.owner``,
``$.items[*].internal``, ``$.items[?(@.kind == 'secret')]``). :func:`compile_json_path` parses it
once and compiles the syntax tree into the frozen steps of :mod:`policies.content.selection`,
which return every matching *location* (the container and the key in it): what deleting a value
needs. jsonpath-ng's own
``find`` builds a context object for every node it visits and costs 2 (conditions) to 30 (``..``)
times as much; its parser, its error messages and its condition semantics are what we reuse.

Cost: each step is linear in the nodes it is given. A descent (``..``) never walks a container
twice, so ``$..a..b`` stays linear even on hostile nesting, and nothing recurses over the data
(only over the path, which is at most 1024 characters).
Refused when the filter is saved, with a message for the admin: a path not starting at ``$``,
anything that does not select removable values (``len``, ``parent``, ``where``, arithmetic,
``|``), regular-expression conditions (``=~``, which could backtrack on untrusted data),
conditions using ``..`` (quadratic) or ``$``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jsonpath_ng import jsonpath as jp
from jsonpath_ng.ext import filter as jp_filter
from jsonpath_ng.ext.parser import parse as jp_parse

from policies.content.conditions import (
    ORDERED,
    Absent,
    AllOf,
    AnyOf,
    CompareLiteral,
    CompareQuery,
    Condition,
    Exists,
)
from policies.content.selection import (
    ChildStep,
    ConditionStep,
    DescendantStep,
    Document,
    FieldsStep,
    IndexStep,
    MemberChain,
    Node,
    RootStep,
    Selector,
    SliceStep,
    ThisStep,
    WildcardStep,
    distinct,
    names_descended_from_root,
)

MAX_PATH_CHARS = 1024


@dataclass(frozen=True, slots=True)
class CompiledPath:
    """One JSON path, parsed and compiled: ``locate`` returns every location it matches, once."""

    expression: str
    selector: Selector
    # Only a path using `@` or `$` past its start can reach one location twice.
    may_repeat: bool
    # The names of a starting `$..name`: walks a Document can share with the other paths.
    names_descended: int = 0

    def locate(self, document: Any) -> list[Node]:
        """Every location in ``document`` the path matches, each once."""
        return self.locate_in(Document(document))

    def locate_in(self, document: Document) -> list[Node]:
        """:meth:`locate` in a document other paths run on too, sharing its walk with them."""
        found = self.selector.select([document.root], document)
        return distinct(found) if self.may_repeat else found

    def __str__(self) -> str:
        return self.expression


@lru_cache(maxsize=1024)
def compile_json_path(expression: str) -> CompiledPath:
    """Parse ``expression`` once; raises ValueError with the parser's message when it is not usable."""
    text = expression.strip()
    if not text.startswith("$"):
        raise ValueError(f"JSON path {expression!r} must start at the document root, '$'")
    if len(text) > MAX_PATH_CHARS:
        raise ValueError(f"JSON path is longer than {MAX_PATH_CHARS} characters")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # `&` in conditions still parses
            tree = jp_parse(text)
    except Exception as exc:  # jsonpath-ng raises lexer, parser and plain exceptions alike
        raise ValueError(f"invalid JSON path {expression!r}: {exc}") from None
    selector = _compile(tree, expression)
    return CompiledPath(
        text, selector, may_repeat=_anchors(tree) > 1, names_descended=names_descended_from_root(selector)
    )


def _compile(node: Any, expression: str) -> Selector:
    simple = _compile_leaf(node)
    if simple is not None:
        return simple
    if isinstance(node, jp.Child):
        left, right = _compile(node.left, expression), _compile(node.right, expression)
        if isinstance(right, FieldsStep) and len(right.names) == 1:
            if isinstance(left, ThisStep):
                return MemberChain(right.names)
            if isinstance(left, MemberChain):
                return MemberChain(left.names + right.names)
        return ChildStep(left, right)
    if isinstance(node, jp.Descendants):
        left, right = _compile(node.left, expression), _compile(node.right, expression)
        names = right.names if isinstance(right, FieldsStep) else None
        return DescendantStep(left, right, _starts_with_this(node.right), names)
    if isinstance(node, jp_filter.Filter):
        for condition in node.expressions:
            _check_condition(condition, expression)
        conditions = tuple(_compile_condition(c, expression) for c in node.expressions)
        return ConditionStep(conditions[0] if len(conditions) == 1 else AllOf(conditions))
    raise ValueError(
        f"JSON path {expression!r} uses {_syntax_name(node)}, which does not select values that can "
        "be removed; use fields, [index], [start:end], *, .. and [?(...)] conditions"
    )


def _compile_leaf(node: Any) -> Selector | None:
    kind = type(node)
    if kind is jp.Root:
        return RootStep()
    if kind is jp.This:
        return ThisStep()
    if kind is jp.Fields:
        return FieldsStep(tuple(dict.fromkeys(node.fields)))
    if kind is jp.Wildcard:
        return WildcardStep()
    if kind is jp.Index:
        return IndexStep(tuple(dict.fromkeys(node.indices)))
    if kind is jp.Slice:
        return SliceStep(node.start, node.end, node.step)
    return None


def _compile_condition(node: Any, expression: str) -> Condition:
    if isinstance(node, jp_filter.And):
        return AllOf(tuple(_compile_condition(operand, expression) for operand in node.operands))
    if isinstance(node, jp_filter.Or):
        return AnyOf(tuple(_compile_condition(operand, expression) for operand in node.operands))
    if isinstance(node, jp_filter.Expression):
        target = _compile(node.target, expression)
        if node.op is None:
            return Exists(target)
        if node.op == "!":
            return Absent(target)
        if node.op in ORDERED:
            if isinstance(node.value, jp.JSONPath):
                return CompareQuery(target, node.op, _compile(node.value, expression))
            return CompareLiteral(target, node.op, node.value)
    raise ValueError(
        f"JSON path {expression!r}: a condition uses {_syntax_name(node)}, which is not supported"
    )


def _starts_with_this(node: Any) -> bool:
    while isinstance(node, (jp.Child, jp.Descendants)):
        node = node.left
    return isinstance(node, jp.This)


def _anchors(node: Any) -> int:
    """How many `$` and `@` the path (outside its conditions) holds."""
    if isinstance(node, (jp.Child, jp.Descendants)):
        return _anchors(node.left) + _anchors(node.right)
    return 1 if isinstance(node, (jp.Root, jp.This)) else 0


def _check_condition(condition: Any, expression: str) -> None:
    """Refuse conditions that could be slow on untrusted data or that look outside the candidate."""
    pending = [condition]
    while pending:
        node = pending.pop()
        if isinstance(node, jp_filter.Expression) and node.op == "=~":
            raise ValueError(
                f"JSON path {expression!r}: regular-expression conditions (=~) are not supported"
            )
        if isinstance(node, jp.Descendants):
            raise ValueError(f"JSON path {expression!r}: a condition may not use '..'")
        if isinstance(node, jp.Root):
            raise ValueError(f"JSON path {expression!r}: a condition may only look at '@', not '$'")
        for attribute in ("expressions", "operands"):
            pending.extend(getattr(node, attribute, ()))
        for attribute in ("target", "value", "left", "right"):
            child = getattr(node, attribute, None)
            if isinstance(child, jp.JSONPath):
                pending.append(child)


def _syntax_name(node: Any) -> str:
    names = {"_Union": "'|'", "_Intersect": "'&'", "Parent": "`parent`", "Where": "'where'"}
    name = type(node).__name__
    return names.get(name, f"`{name}`")
