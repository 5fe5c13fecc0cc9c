"""Response filters: destroy every match of admin-chosen JSON paths in MCP results.

Where a filter looks, by JSON-RPC method of the request the result answers:

- ``tools/call``: ``structuredContent``, and each content item of type ``text`` whose text is
  itself JSON (parsed, filtered, written back compactly); an embedded ``resource`` item is
  treated as a ``resources/read`` content;
- ``resources/read``: each item of ``contents``, and its ``text`` when that is JSON;
- ``prompts/get``: each message, and its content's text when that is JSON;
- any other method, or a non-MCP body: the result as a whole.

Only one level of JSON-in-text is read: a string inside that JSON is not parsed again.
Paths are relative to each of those documents: ``$.owner`` is the ``owner`` member of the
structured content. A match of ``$`` itself empties the document. Filters stack in the order
given, each path of a filter after the one before it. A ``monitor`` filter changes nothing and
counts the distinct locations its paths match in the document as the filters before it left it.
Counts are numbers only: values never leave this module.

Untrusted input fails closed: text that looks like JSON but is nested beyond what a parser can
hold, a body the gateway cannot read as JSON, or a filtered document too deep to write back
raises :class:`UnfilterableContent`, so the proxy answers with an error instead of forwarding
something unfiltered. Text that orjson refuses but Python's lenient parser reads (``NaN``) is
filtered too, as an agent's parser might read it; JSON text that neither can read for its depth or
for an integer of thousands of digits is refused, not passed through.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from policies.content.paths import CompiledPath, compile_json_path
from policies.content.selection import Document, Node, location

FilterMode = Literal["enforce", "monitor"]
# Anchored, one character class then one literal: linear, whatever the text.
_JSON_START = re.compile(r"[ \t\r\n]*[\[{]")
MODES: frozenset[str] = frozenset({"enforce", "monitor"})


class UnfilterableContent(ValueError):
    """A response the filters cannot be applied to safely; the proxy must not forward it."""


@dataclass(frozen=True, slots=True)
class CompiledFilter:
    """One filter, ready to apply: its paths in order, its mode and its route glob (kept as data)."""

    id: int
    paths: tuple[CompiledPath, ...]
    mode: FilterMode = "enforce"
    route: str | None = None

    @property
    def enforces(self) -> bool:
        return self.mode == "enforce"


def compile_filter(
    *, filter_id: int, paths: Sequence[str], mode: str = "enforce", route: str | None = None
) -> CompiledFilter:
    """Build a filter from its saved fields; raises ValueError naming what is wrong."""
    if mode not in MODES:
        raise ValueError(f"filter mode must be 'enforce' or 'monitor', not {mode!r}")
    if not paths:
        raise ValueError("a filter needs at least one JSON path")
    compiled = tuple(compile_json_path(path) for path in paths)
    return CompiledFilter(filter_id, compiled, "enforce" if mode == "enforce" else "monitor", route or None)


@dataclass(frozen=True, slots=True)
class FilterCount:
    """How many values one filter removed (or, in monitor mode, would have removed)."""

    filter_id: int
    mode: FilterMode
    removed: int


@dataclass(frozen=True, slots=True)
class FilterOutcome:
    """What applying the filters did: whether the result changed, and the count of each filter."""

    changed: bool
    counts: tuple[FilterCount, ...]

    def as_audit(self) -> list[dict[str, object]]:
        """The counts for an audit event: ids, modes and numbers, never values."""
        return [{"filter": c.filter_id, "mode": c.mode, "removed": c.removed} for c in self.counts]


NOTHING_APPLIED = FilterOutcome(False, ())


class _Run:
    """One application of a filter stack to one result (or one body of messages)."""

    __slots__ = ("changed", "counts", "filters", "shares_walk")

    def __init__(self, filters: Sequence[CompiledFilter]) -> None:
        self.filters = filters
        self.counts = [0] * len(filters)
        self.changed = False
        # Listing a document's objects for later `$..name` paths pays from the second one on.
        self.shares_walk = sum(path.names_descended for f in filters for path in f.paths) > 1

    def outcome(self) -> FilterOutcome:
        counts = tuple(FilterCount(f.id, f.mode, n) for f, n in zip(self.filters, self.counts, strict=True))
        return FilterOutcome(self.changed, counts)

    def document(self, document: Any) -> bool:
        """Apply every filter to one JSON document in place; True when it changed."""
        if not isinstance(document, (dict, list)):
            return False
        changed = False
        shared = Document(document, shares_walk=self.shares_walk)
        for index, compiled in enumerate(self.filters):
            if compiled.enforces:
                for path in compiled.paths:
                    nodes = path.locate_in(shared)
                    removed = _destroy(nodes)
                    shared.removed(nodes)
                    self.counts[index] += removed
                    changed = changed or removed > 0
            else:
                seen = {location(node) for path in compiled.paths for node in path.locate_in(shared)}
                self.counts[index] += len(seen)
        self.changed = self.changed or changed
        return changed

    def text_member(self, holder: dict[str, Any], key: str) -> None:
        """Filter ``holder[key]`` when it is a string holding a JSON object or array."""
        text = holder.get(key)
        if not isinstance(text, str) or not _looks_like_json(text):
            return
        document = _parse_text(text)
        if document is not None and self.document(document):
            holder[key] = _serialise_text(document)

    def block(self, block: Any) -> None:
        """A content block: text whose text is JSON, or an embedded resource."""
        if not isinstance(block, dict):
            return
        kind = block.get("type")
        if kind == "text":
            self.text_member(block, "text")
        elif kind == "resource":
            self.resource_contents(block.get("resource"))

    def resource_contents(self, item: Any) -> None:
        """A resource's contents: the item itself, then its text when that is JSON."""
        if isinstance(item, dict):
            self.document(item)
            self.text_member(item, "text")


def _destroy(nodes: list[Node]) -> int:
    """Remove every located value; array elements from the highest position down."""
    positions: dict[int, list[Any]] = {}  # id of an array -> [the array, its positions...]
    for container, key, value in nodes:
        if type(container) is dict:
            container.pop(key, None)
        elif container is None:
            value.clear()
        elif isinstance(container, dict):
            container.pop(key, None)
        elif id(container) in positions:
            positions[id(container)].append(key)
        else:
            positions[id(container)] = [container, key]
    for array, *indices in positions.values():
        if len(indices) == 1:
            del array[indices[0]]
        else:
            for index in sorted(set(indices), reverse=True):
                del array[index]
    return len(nodes)


def _looks_like_json(text: str) -> bool:
    """Whether the text starts, after JSON whitespace of any length, an object or an array."""
    return _JSON_START.match(text) is not None


def _parse_text(text: str) -> Any:
    """The object or array a text holds, None when it holds none; raises when too deep to tell."""
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError:
        try:
            document = json.loads(text)  # NaN, Infinity, huge numbers: what a lenient agent reads
        except json.JSONDecodeError:
            return None
        except (RecursionError, ValueError):  # too deep, or an integer past Python's digit limit
            raise UnfilterableContent("a JSON text content is too deep or too large to filter") from None
    return document if isinstance(document, (dict, list)) else None


def _serialise_text(document: Any) -> str:
    try:
        return orjson.dumps(document).decode()
    except orjson.JSONEncodeError:  # deeper than orjson writes, or what only json.loads read
        try:
            return json.dumps(document, separators=(",", ":"))
        except (RecursionError, ValueError):
            raise UnfilterableContent("a filtered text content cannot be written back") from None


def _filter_result(run: _Run, method: str, result: Any) -> None:
    if not isinstance(result, dict):
        run.document(result)
    elif method == "tools/call":
        _filter_tool_result(run, result)
    elif method == "resources/read":
        for item in _items(result.get("contents")):
            run.resource_contents(item)
    elif method == "prompts/get":
        for message in _items(result.get("messages")):
            run.document(message)
            if isinstance(message, dict):
                content = message.get("content")
                for block in content if isinstance(content, list) else (content,):
                    run.block(block)
    else:
        run.document(result)


def _filter_tool_result(run: _Run, result: dict[str, Any]) -> None:
    """``structuredContent``, then each content block. A text block holding the very JSON of the
    structured content (what an MCP server returning structured output also sends) is not filtered a
    second time: the same filters on the same document give the same document and the same counts,
    so the counts are added again and the text becomes the filtered document, written as
    :meth:`_Run.text_member` would write it. "The very JSON" means equal canonical bytes (orjson), so
    key order and number types agree too; anything else is filtered as its own document.
    """
    structured = result.get("structuredContent")
    twin = _canonical(structured) if isinstance(structured, (dict, list)) else None
    before = list(run.counts)
    changed = run.document(structured)
    added = [after - earlier for after, earlier in zip(run.counts, before, strict=True)]
    for block in _items(result.get("content")):
        if twin is None or not _is_text_twin(block, twin):
            run.block(block)
            continue
        run.counts = [count + extra for count, extra in zip(run.counts, added, strict=True)]
        if changed:
            block["text"] = _serialise_text(structured)


def _canonical(document: Any) -> bytes | None:
    try:
        return orjson.dumps(document)
    except orjson.JSONEncodeError:
        return None


def _is_text_twin(block: Any, twin: bytes) -> bool:
    """Whether ``block`` is a text block whose JSON text has the canonical bytes ``twin``."""
    if not isinstance(block, dict) or block.get("type") != "text":
        return False
    text = block.get("text")
    if not isinstance(text, str) or not _looks_like_json(text):
        return False
    try:
        return _canonical(orjson.loads(text)) == twin
    except orjson.JSONDecodeError:
        return False


def _items(value: Any) -> Iterable[Any]:
    return value if isinstance(value, list) else ()


def apply_filters(method: str, result: Any, filters: Sequence[CompiledFilter]) -> FilterOutcome:
    """Apply ``filters`` in order to a JSON-RPC ``result`` of ``method``, in place.

    ``method`` is the request's JSON-RPC method ("" for a non-MCP body: the whole of it is
    filtered). Raises UnfilterableContent when a text content cannot be filtered safely.
    """
    if not filters:
        return NOTHING_APPLIED
    run = _Run(filters)
    _filter_result(run, method, result)
    return run.outcome()


def filter_message_bytes(
    body: bytes, methods_by_id: Mapping[Any, str], filters: Sequence[CompiledFilter]
) -> tuple[bytes, FilterOutcome]:
    """Filter the results in a JSON body of one message or a batch; the counts are summed.

    A result is matched to its request's method by id; a result whose id is unknown is filtered
    as a whole. Requests, notifications and errors are left alone. The very same ``body`` object
    comes back when nothing changed. Raises UnfilterableContent when the body is not JSON the
    gateway can read or the filtered body cannot be written.
    """
    if not filters:
        return body, NOTHING_APPLIED
    run = _Run(filters)
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise UnfilterableContent("the response is not JSON the gateway can read and filter") from None
    for message in payload if isinstance(payload, list) else (payload,):
        if isinstance(message, dict) and "result" in message and "method" not in message:
            _filter_result(run, _method_of(message.get("id"), methods_by_id), message["result"])
    if not run.changed:
        return body, run.outcome()
    try:
        return orjson.dumps(payload), run.outcome()
    except orjson.JSONEncodeError:
        raise UnfilterableContent("the filtered response is nested too deeply to write") from None


def apply_to_message_bytes(
    body: bytes, methods_by_id: Mapping[Any, str], filters: Sequence[CompiledFilter]
) -> bytes:
    """:func:`filter_message_bytes` without the counts: the body to forward."""
    return filter_message_bytes(body, methods_by_id, filters)[0]


def _method_of(message_id: Any, methods_by_id: Mapping[Any, str]) -> str:
    if isinstance(message_id, (str, int)) and not isinstance(message_id, bool):
        return methods_by_id.get(message_id, "")
    return ""
