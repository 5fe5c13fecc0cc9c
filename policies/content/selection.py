"""The compiled steps of a JSON path: from a list of locations to the locations they select.

A location (:data:`Node`) is the container holding a value (None for the document itself), the
key in it and the value: deleting a value needs its container and key. Every step is linear in
the nodes it is given; a descent (``..``) walks each container once with an explicit stack, so
chains of descents stay linear and nothing recurses over the data. Built by
:mod:`policies.content.paths`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from policies.content.conditions import Condition

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
        if self.names is not None and len(self.names) == 1 and len(starts) == 1:
            return _named_members(starts[0][2], self.names[0])
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


def _named_members(start: Any, name: str) -> list[Node]:
    """``..name`` from one start: the member ``name`` of every object in it, in the order
    :func:`_container_values` walks them, found during the one walk (the commonest filter path)."""
    found: list[Node] = []
    stack = [start]
    pop, push, keep = stack.pop, stack.extend, found.append
    while stack:
        value = pop()
        kind = type(value)
        if kind is dict:
            if name in value:
                keep((value, name, value[name]))
            push(value.values())
        elif kind is list:
            push(value)
        elif kind not in _SCALARS and isinstance(value, (dict, list)):
            if isinstance(value, dict):
                if name in value:
                    keep((value, name, value[name]))
                push(value.values())
            else:
                push(value)
    return found


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


def distinct(nodes: list[Node]) -> list[Node]:
    if len(nodes) < 2:
        return nodes
    return list({location(node): node for node in nodes}.values())
