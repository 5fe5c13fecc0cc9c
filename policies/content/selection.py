"""The compiled steps of a JSON path: from a list of locations to the locations they select.

A location (:data:`Node`) is the container holding a value (None for the document itself), the
key in it and the value: deleting a value needs its container and key. Every step is linear in
the nodes it is given; a descent (``..``) walks each container once with an explicit stack, so
chains of descents stay linear and nothing recurses over the data. ``$..name``, the commonest
descent, reads the objects that the :class:`Document` lists once for every path and filter
applied to it. Built by :mod:`policies.content.paths`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from policies.content.conditions import Condition

_SCALARS = frozenset({str, int, float, bool, type(None)})

# A location: the container holding the value (None for the document itself), its key, the value.
Node = tuple[Any, Any, Any]
MISSING = object()  # what a member chain finds where the member is missing


class Selector(Protocol):
    """One compiled step of a path: from the nodes it is given to the nodes it selects."""

    def select(self, nodes: list[Node], document: Document) -> list[Node]: ...


class Document:
    """One JSON document that paths run on, one after another, sharing one walk for ``$..name``.

    When told it shares its walk, the first ``$..name`` lists the document's objects, in the
    order :func:`_container_values` walks them; later ones read that list. Only deleting values
    changes a document while paths run on it, so every object the document still holds is listed,
    and a name no listed object has is absent: the commonest answer, given without a walk. A caller
    that deletes located values tells :meth:`removed`. Deleting scalars, or array elements
    (positions shift, the objects stay the same), leaves the list exact; once a container was
    deleted, the list may also hold objects no longer in the document, and a name some listed
    object has is looked for by walking the document again. Either way ``$..name`` finds exactly
    what a walk of the document as it now is would find, and nothing an earlier path destroyed.
    """

    __slots__ = ("_objects", "_shares", "_stale", "root")

    def __init__(self, value: Any, *, shares_walk: bool = False) -> None:
        """``shares_walk``: whether more than one ``$..name`` will run (listing costs a little)."""
        self.root: Node = (None, None, value)
        self._shares = shares_walk
        self._objects: list[dict[str, Any]] | None = None
        self._stale = False  # a container was deleted since the objects were listed

    def members(self, name: str) -> list[Node]:
        """``$..name``: the member ``name`` of every object in the document, in walk order."""
        if self._objects is None:
            if not self._shares:
                return _named_members(self.root[2], name)
            self._objects, found = _objects_and_members(self.root[2], name)
            return found
        found = [(value, name, value[name]) for value in self._objects if name in value]
        if found and self._stale:
            return _named_members(self.root[2], name)
        return found

    def removed(self, nodes: list[Node]) -> None:
        """The values located by ``nodes`` were just deleted from the document."""
        if self._objects is None or self._stale:
            return
        for _, _, value in nodes:
            if type(value) not in _SCALARS and isinstance(value, (dict, list)):
                self._stale = True
                return


@dataclass(frozen=True, slots=True)
class RootStep:
    """``$``: the document itself."""

    def select(self, nodes: list[Node], document: Document) -> list[Node]:
        return [document.root]


@dataclass(frozen=True, slots=True)
class ThisStep:
    """``@``: the nodes as they are."""

    def select(self, nodes: list[Node], document: Document) -> list[Node]:
        return nodes


@dataclass(frozen=True, slots=True)
class FieldsStep:
    """``.name`` or ``['a','b']``: the named members of objects."""

    names: tuple[str, ...]

    def select(self, nodes: list[Node], document: Document) -> list[Node]:
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

    def select(self, nodes: list[Node], document: Document) -> list[Node]:
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

    def member_of(self, value: Any) -> Any:
        """The value at the end of the chain from ``value``, or :data:`MISSING`."""
        for name in self.names:
            if not isinstance(value, dict) or name not in value:
                return MISSING
            value = value[name]
        return value


@dataclass(frozen=True, slots=True)
class WildcardStep:
    """``.*`` or ``[*]``: every member of an object, every element of an array."""

    def select(self, nodes: list[Node], document: Document) -> list[Node]:
        found: list[Node] = []
        for _, _, value in nodes:
            found.extend(_children(value))
        return found


@dataclass(frozen=True, slots=True)
class IndexStep:
    """``[0]``, ``[-1]``, ``[0,2]``: array elements by position (negative counts from the end)."""

    indices: tuple[int, ...]

    def select(self, nodes: list[Node], document: Document) -> list[Node]:
        found: list[Node] = []
        if len(self.indices) == 1:
            return self._one(nodes, self.indices[0])
        for _, _, value in nodes:
            if isinstance(value, list):
                size = len(value)
                positions = {index + size if index < 0 else index for index in self.indices}
                found.extend(
                    (value, position, value[position]) for position in positions if 0 <= position < size
                )
        return found

    @staticmethod
    def _one(nodes: list[Node], index: int) -> list[Node]:
        found: list[Node] = []
        keep = found.append
        for _, _, value in nodes:
            if isinstance(value, list):
                position = index + len(value) if index < 0 else index
                if 0 <= position < len(value):
                    keep((value, position, value[position]))
        return found


@dataclass(frozen=True, slots=True)
class SliceStep:
    """``[start:end:step]``: array elements as Python slices them; a step of 0 selects nothing."""

    start: int | None
    end: int | None
    step: int | None

    def select(self, nodes: list[Node], document: Document) -> list[Node]:
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

    def select(self, nodes: list[Node], document: Document) -> list[Node]:
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

    def select(self, nodes: list[Node], document: Document) -> list[Node]:
        return self.right.select(self.left.select(nodes, document), document)


@dataclass(frozen=True, slots=True)
class DescendantStep:
    """``left..right``: ``right`` applied to what ``left`` selects and to everything inside it.

    Every step but ``@`` selects from inside containers, so unless ``right`` starts with ``@``
    only the containers are walked, and ``right`` reads them as values (their own location is
    never a result). ``..name``, the common case, reads the named members of the objects walked.
    From the document itself (``$..``) the walk is the :class:`Document`'s, shared by every path.
    """

    left: Selector
    right: Selector
    scalars_too: bool
    names: tuple[str, ...] | None = None

    def select(self, nodes: list[Node], document: Document) -> list[Node]:
        found: list[Node]
        starts = self.left.select(nodes, document)
        if self.scalars_too:
            return self.right.select(_walk(starts), document)
        if self.names is not None:
            if len(starts) == 1 and starts[0] is document.root:
                found = []
                for name in self.names:
                    found.extend(document.members(name))
                return found
            if len(self.names) == 1 and len(starts) == 1:
                return _named_members(starts[0][2], self.names[0])
            objects = [value for value in _container_values(starts) if isinstance(value, dict)]
            found = []
            for name in self.names:
                found.extend((value, name, value[name]) for value in objects if name in value)
            return found
        return self.right.select([(None, None, value) for value in _container_values(starts)], document)


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
    :func:`_container_values` walks them, found during the one walk."""
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


def names_descended_from_root(selector: Selector) -> int:
    """How many names a path starting ``$..name`` (2 for ``$..['a','b']``) looks for, else 0:
    each is a :meth:`Document.members`, which a document can share."""
    while isinstance(selector, (ChildStep, DescendantStep)):
        if isinstance(selector, DescendantStep) and isinstance(selector.left, RootStep):
            return len(selector.names) if selector.names is not None and not selector.scalars_too else 0
        selector = selector.left
    return 0


def _objects_and_members(start: Any, name: str) -> tuple[list[dict[str, Any]], list[Node]]:
    """:func:`_named_members` of one start, listing on the way the objects it walks."""
    objects: list[dict[str, Any]] = []
    found: list[Node] = []
    stack = [start]
    pop, push, keep, listed = stack.pop, stack.extend, found.append, objects.append
    while stack:
        value = pop()
        kind = type(value)
        if kind is dict:
            listed(value)
            if name in value:
                keep((value, name, value[name]))
            push(value.values())
        elif kind is list:
            push(value)
        elif kind not in _SCALARS and isinstance(value, (dict, list)):
            if isinstance(value, dict):
                listed(value)
                if name in value:
                    keep((value, name, value[name]))
                push(value.values())
            else:
                push(value)
    return objects, found


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
