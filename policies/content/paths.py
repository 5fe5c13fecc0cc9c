"""JSON paths for response filters: parsed once by jsonpath-ng, then run by our own linear selectors.

An admin writes a path in jsonpath-ng's extended syntax (``$..id``, ``$.owner``,
``$.items[*].internal``, ``$.items[?(@.kind == 'secret')]``). :func:`compile_json_path` parses it
once and compiles the syntax tree into frozen selectors that return every matching *location*
(the container and the key in it), which is what deleting a value needs. jsonpath-ng's own
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
from typing import Any, Protocol

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

MAX_PATH_CHARS = 1024
_SCALARS = frozenset({str, int, float, bool, type(None)})

# A location: the container holding the value (None for the document itself), its key, the value.
Node = tuple[Any, Any, Any]


class Selector(Protocol):
    """One compiled step of a path: from the nodes it is given to the nodes it selects."""

    def select(self, nodes: list[Node], root: Node) -> list[Node]: ...


@dataclass(frozen=True, slots=True)
class RootStep:
    """``$``: the document itself."""

    def select(self, nodes: list[Node], root: Node) -> list[Node]:
        return [root]


@dataclass(frozen=True, slots=True)
class ThisStep:
    """``@``: the nodes as they are."""

    def select(self, nodes: list[Node], root: Node) -> list[Node]:
        return nodes


@dataclass(frozen=True, slots=True)
class FieldsStep:
    """``.name`` or ``['a','b']``: the named members of objects."""

    names: tuple[str, ...]

    def select(self, nodes: list[Node], root: Node) -> list[Node]:
        if len(self.names) == 1:
            name = self.names[0]
            return [
                (value, name, value[name])
                for _, _, value in nodes
                if isinstance(value, dict) and name in value
            ]
        found: list[Node] = []
        for _, _, value in nodes:
            if isinstance(value, dict):
                found.extend((value, name, value[name]) for name in self.names if name in value)
        return found


@dataclass(frozen=True, slots=True)
class MemberChain:
    """``@.a.b``: one named member after another, the usual target of a condition."""

    names: tuple[str, ...]

    def select(self, nodes: list[Node], root: Node) -> list[Node]:
        found: list[Node] = []
        for node in nodes:
            for name in self.names:
                value = node[2]
                if not isinstance(value, dict) or name not in value:
                    break
                node = (value, name, value[name])
            else:
                found.append(node)
        return found


@dataclass(frozen=True, slots=True)
class WildcardStep:
    """``.*`` or ``[*]``: every member of an object, every element of an array."""

    def select(self, nodes: list[Node], root: Node) -> list[Node]:
        found: list[Node] = []
        for _, _, value in nodes:
            found.extend(_children(value))
        return found


@dataclass(frozen=True, slots=True)
class IndexStep:
    """``[0]``, ``[-1]``, ``[0,2]``: array elements by position (negative counts from the end)."""

    indices: tuple[int, ...]

    def select(self, nodes: list[Node], root: Node) -> list[Node]:
        found: list[Node] = []
        for _, _, value in nodes:
            if isinstance(value, list):
                size = len(value)
                positions = {index + size if index < 0 else index for index in self.indices}
                found.extend(
                    (value, position, value[position]) for position in positions if 0 <= position < size
                )
        return found


@dataclass(frozen=True, slots=True)
class SliceStep:
    """``[start:end:step]``: array elements as Python slices them; a step of 0 selects nothing."""

    start: int | None
    end: int | None
    step: int | None

    def select(self, nodes: list[Node], root: Node) -> list[Node]:
        found: list[Node] = []
        if self.step == 0:
            return found
        for _, _, value in nodes:
            if isinstance(value, list):
                positions = range(*slice(self.start, self.end, self.step).indices(len(value)))
                found.extend((value, position, value[position]) for position in positions)
        return found


@dataclass(frozen=True, slots=True)
class ConditionStep:
    """``[?(...)]``: the members or elements for which the condition holds."""

    condition: Condition

    def select(self, nodes: list[Node], root: Node) -> list[Node]:
        found: list[Node] = []
        holds = self.condition.holds
        for _, _, value in nodes:
            if isinstance(value, dict):
                found.extend((value, key, child) for key, child in value.items() if holds(child))
            elif isinstance(value, list):
                found.extend((value, index, child) for index, child in enumerate(value) if holds(child))
        return found


@dataclass(frozen=True, slots=True)
class ChildStep:
    """``left.right``: ``right`` applied to what ``left`` selects."""

    left: Selector
    right: Selector

    def select(self, nodes: list[Node], root: Node) -> list[Node]:
        return self.right.select(self.left.select(nodes, root), root)


@dataclass(frozen=True, slots=True)
class DescendantStep:
    """``left..right``: ``right`` applied to what ``left`` selects and to everything inside it.

    Every step but ``@`` selects from inside containers, so unless ``right`` starts with ``@``
    only the containers are walked, and ``right`` reads them as values (their own location is
    never a result). ``..name``, the common case, checks the names during the walk.
    """

    left: Selector
    right: Selector
    scalars_too: bool
    names: tuple[str, ...] | None = None

    def select(self, nodes: list[Node], root: Node) -> list[Node]:
        starts = self.left.select(nodes, root)
        if self.scalars_too:
            return self.right.select(_walk(starts), root)
        containers = _container_values(starts)
        if self.names is None:
            return self.right.select([(None, None, value) for value in containers], root)
        found: list[Node] = []
        for name in self.names:
            found.extend(
                (value, name, value[name])
                for value in containers
                if isinstance(value, dict) and name in value
            )
        return found


def _children(value: Any) -> list[Node]:
    if isinstance(value, dict):
        return [(value, key, child) for key, child in value.items()]
    if isinstance(value, list):
        return [(value, index, child) for index, child in enumerate(value)]
    return []


def _container_values(starts: list[Node]) -> list[Any]:
    """The containers among the start values and every container inside them, each once.

    Starts may nest (``$..a..b``): a container already walked is skipped with all it holds, which
    keeps a chain of descents linear. The hottest loop of the filters: exact types first.
    """
    stack = [value for _, _, value in starts]
    seen: set[int] | None = set() if len(stack) > 1 else None  # one start is one tree
    walked: list[Any] = []
    pop, push, keep = stack.pop, stack.extend, walked.append
    while stack:
        value = pop()
        kind = type(value)
        if kind in _SCALARS:
            continue
        if kind is not dict and kind is not list and not isinstance(value, (dict, list)):
            continue
        if seen is not None:
            if id(value) in seen:
                continue
            seen.add(id(value))
        keep(value)
        push(value.values() if isinstance(value, dict) else value)
    return walked


def _walk_containers(starts: list[Node]) -> list[Node]:
    """Like :func:`_container_values`, keeping each container's location."""
    seen: set[int] = set()
    walked: list[Node] = []
    stack = [node for node in starts if isinstance(node[2], (dict, list))]
    while stack:
        node = stack.pop()
        value = node[2]
        if id(value) in seen:
            continue
        seen.add(id(value))
        walked.append(node)
        items = value.items() if isinstance(value, dict) else enumerate(value)
        stack.extend([(value, key, child) for key, child in items if isinstance(child, (dict, list))])
    return walked


def _walk(starts: list[Node]) -> list[Node]:
    """The start nodes and every node inside them: the containers, then the scalars they hold."""
    containers = _walk_containers(starts)
    walked = [node for node in starts if not isinstance(node[2], (dict, list))]
    walked.extend(containers)
    for _, _, value in containers:
        walked.extend(child for child in _children(value) if not isinstance(child[2], (dict, list)))
    return walked


def location(node: Node) -> tuple[int, Any]:
    """A node's identity in its document: its container and key (the document itself is ``None``)."""
    return id(node[0]), node[1]


def _distinct(nodes: list[Node]) -> list[Node]:
    if len(nodes) < 2:
        return nodes
    return list({location(node): node for node in nodes}.values())


@dataclass(frozen=True, slots=True)
class CompiledPath:
    """One JSON path, parsed and compiled: ``locate`` returns every location it matches, once."""

    expression: str
    selector: Selector
    # Only a path using `@` or `$` past its start can reach one location twice.
    may_repeat: bool

    def locate(self, document: Any) -> list[Node]:
        """Every location in ``document`` the path matches, each once."""
        root: Node = (None, None, document)
        found = self.selector.select([root], root)
        return _distinct(found) if self.may_repeat else found

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
    return CompiledPath(text, selector, may_repeat=_anchors(tree) > 1)


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
