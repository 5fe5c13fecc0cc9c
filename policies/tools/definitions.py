"""A tool's definition as an MCP server lists it: canonical encoding, hash and reviewable diff.

Tool pinning records what the upstream served in ``tools/list`` and notices when it changes. Only the
fields that reach the model or describe the call are kept: ``name``, ``title``, ``description``,
``inputSchema``, ``outputSchema`` and ``annotations``. ``_meta`` and ``icons`` are left out, because
servers may vary them between listings without changing what the tool asks of the model.

Canonical encoding (what :meth:`ToolDefinition.definition_hash` hashes): a JSON object holding only the
kept fields that are present, serialised by orjson with ``OPT_SORT_KEYS`` (keys sorted by code point at
every level, no whitespace, UTF-8, non-ASCII characters written as themselves, never escaped). Array
order is kept, because it is meaningful (``enum``, ``required``, ``prefixItems``). Numbers keep the
spelling the parser gave them: ``1`` and ``1.0`` differ. Strings are not Unicode-normalised: a change of
code point is a change. The hash is the lower-case hex SHA-256 of those bytes.
"""

from __future__ import annotations

import difflib
import hashlib
import math
import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

#: The kept fields, in the order the diff shows them, with their JSON types.
STRING_FIELDS = ("name", "title", "description")
OBJECT_FIELDS = ("inputSchema", "outputSchema", "annotations")
#: Longest tool name that can be pinned (MCP asks for 1-128 characters).
MAX_NAME_CHARS = 200
#: Deepest nesting accepted in a definition; real schemas stay far below it, hostile ones do not.
MAX_DEPTH = 64
#: The diff stops after this many lines, so a hostile definition cannot flood the approval page.
MAX_DIFF_LINES = 2000
#: Strings longer than this are cut after each sentence in the review layout.
WRAP_AT = 100
#: Split points that keep the separator with the piece before it (zero-width lookbehinds: linear).
LINE_END = re.compile(r"(?<=\n)")
SENTENCE_END = re.compile(r"(?<=\n)|(?<=[.!?:;] )")
#: Categories of characters a reviewer cannot see: controls, format (bidi, zero-width, tags), private use,
#: unassigned, line and paragraph separators.
INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cn", "Zl", "Zp"})

JSONValue = Any


class ToolDefinitionError(ValueError):
    """A ``tools/list`` item that cannot be pinned: wrong types, too deep, or not encodable as JSON."""


@dataclass(frozen=True, slots=True, eq=False)
class ToolDefinition:
    """One tool as listed, with its canonical bytes and hash computed once.

    The schema and annotation fields are private copies of the listing's JSON; treat them as read-only.
    Two definitions are equal when their canonical encodings are.
    """

    name: str
    title: str | None
    description: str | None
    input_schema: Mapping[str, JSONValue] | None
    output_schema: Mapping[str, JSONValue] | None
    annotations: Mapping[str, JSONValue] | None
    canonical: bytes
    hash: str

    @classmethod
    def from_listing(cls, item: object) -> ToolDefinition:
        """Build a definition from one item of a ``tools/list`` result; raise ToolDefinitionError."""
        if not isinstance(item, Mapping):
            raise ToolDefinitionError("a tool definition must be a JSON object")
        kept = _kept_fields(item)
        check_json_value(kept)
        canonical = canonical_json(kept)
        # A round trip gives private copies that later changes to the caller's dict cannot reach.
        copy = orjson.loads(canonical)
        return cls(
            name=copy["name"],
            title=copy.get("title"),
            description=copy.get("description"),
            input_schema=copy.get("inputSchema"),
            output_schema=copy.get("outputSchema"),
            annotations=copy.get("annotations"),
            canonical=canonical,
            hash=hashlib.sha256(canonical).hexdigest(),
        )

    @classmethod
    def from_canonical(cls, canonical: bytes) -> ToolDefinition:
        """Rebuild a definition from the canonical bytes it was stored as; raise ToolDefinitionError."""
        try:
            item = orjson.loads(canonical)
        except orjson.JSONDecodeError as error:
            raise ToolDefinitionError(f"a stored tool definition is not JSON: {error}") from error
        return cls.from_listing(item)

    def definition_hash(self) -> str:
        """The lower-case hex SHA-256 of the canonical encoding (see the module docstring)."""
        return self.hash

    def as_json(self) -> dict[str, JSONValue]:
        """The kept fields as a fresh JSON object (present fields only), as the listing spelled them."""
        value: dict[str, JSONValue] = orjson.loads(self.canonical)
        return value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ToolDefinition):
            return NotImplemented
        return self.canonical == other.canonical

    def __hash__(self) -> int:
        return hash(self.hash)

    def __repr__(self) -> str:
        return f"ToolDefinition(name={self.name!r}, hash={self.hash[:12]})"


def _kept_fields(item: Mapping[Any, Any]) -> dict[str, JSONValue]:
    """The kept fields of a listing item, type-checked; absent and null fields are left out."""
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise ToolDefinitionError("a tool definition needs a non-empty string 'name'")
    if len(name) > MAX_NAME_CHARS:
        raise ToolDefinitionError(f"a tool name is longer than {MAX_NAME_CHARS} characters")
    if escape_invisible(name) != name:
        raise ToolDefinitionError(f"tool name {escape_invisible(name)!r} holds invisible characters")
    kept: dict[str, JSONValue] = {}
    for field in STRING_FIELDS:
        value = item.get(field)
        if value is not None and not isinstance(value, str):
            raise ToolDefinitionError(f"tool {name!r}: '{field}' must be a string")
        if value is not None:
            kept[field] = value
    for field in OBJECT_FIELDS:
        value = item.get(field)
        if value is not None and not isinstance(value, dict):
            raise ToolDefinitionError(f"tool {name!r}: '{field}' must be a JSON object")
        if value is not None:
            kept[field] = value
    return kept


def check_json_value(value: JSONValue, *, max_depth: int = MAX_DEPTH) -> None:
    """Raise ToolDefinitionError unless ``value`` is plain JSON no deeper than ``max_depth``.

    Iterative, so a hostile nesting costs a bounded stack; non-finite floats and non-string keys are
    refused because the canonical encoding could not represent them faithfully.
    """
    stack: list[tuple[JSONValue, int]] = [(value, 0)]
    while stack:
        current, depth = stack.pop()
        if isinstance(current, dict):
            children: Iterator[JSONValue] | list[JSONValue] = list(current.values())
            if any(not isinstance(key, str) for key in current):
                raise ToolDefinitionError("a tool definition has a non-string object key")
        elif isinstance(current, list | tuple):
            children = list(current)
        elif isinstance(current, float) and not math.isfinite(current):
            raise ToolDefinitionError("a tool definition has a number JSON cannot represent")
        elif current is None or isinstance(current, str | bool | int | float):
            continue
        else:
            raise ToolDefinitionError(f"a tool definition holds a {type(current).__name__}, not JSON")
        if depth >= max_depth and children:
            raise ToolDefinitionError(f"a tool definition is nested deeper than {max_depth} levels")
        stack.extend((child, depth + 1) for child in children)


def canonical_json(value: JSONValue) -> bytes:
    """The canonical encoding of a JSON value: orjson, sorted keys, no whitespace, UTF-8."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except (TypeError, orjson.JSONEncodeError) as error:
        raise ToolDefinitionError(f"a tool definition cannot be encoded as JSON: {error}") from error


def escape_invisible(text: str) -> str:
    """``text`` with every character a reviewer cannot see written as a ``\\uXXXX`` escape.

    Tag characters, bidi controls, zero-width characters, other controls and unassigned code points
    become ``\\u200b`` or ``\\U000e0041``, so a reviewer sees that they are there and never what a
    terminal or browser would make of them. Printable text, spaces included, is left as it is.
    """
    if text.isascii() and text.isprintable():
        return text
    return "".join(_escaped(char) for char in text)


def _escaped(char: str) -> str:
    if char == " " or unicodedata.category(char) not in INVISIBLE_CATEGORIES:
        return char
    code = ord(char)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def review_lines(definition: ToolDefinition) -> list[str]:
    """The definition laid out for review: pretty JSON with sorted keys, two-space indent, invisibles escaped.

    A long string is cut after each line break and, past :data:`WRAP_AT` characters, after each
    sentence, into quoted pieces on consecutive lines (read them as concatenated), so a changed
    sentence of a long description shows as one changed line in the diff.
    """
    lines: list[str] = []
    _render(definition.as_json(), lines, indent="", lead="", trail="")
    return lines


def _render(value: JSONValue, lines: list[str], *, indent: str, lead: str, trail: str) -> None:
    """Append ``value``'s lines; ``lead`` prefixes the first (a key), ``trail`` ends the last (a comma)."""
    if isinstance(value, dict) and value:
        lines.append(f"{indent}{lead}{{")
        keys = sorted(value)
        for index, key in enumerate(keys):
            comma = "," if index < len(keys) - 1 else ""
            _render(value[key], lines, indent=indent + "  ", lead=f"{_quoted(key)}: ", trail=comma)
        lines.append(f"{indent}}}{trail}")
    elif isinstance(value, list) and value:
        lines.append(f"{indent}{lead}[")
        for index, item in enumerate(value):
            comma = "," if index < len(value) - 1 else ""
            _render(item, lines, indent=indent + "  ", lead="", trail=comma)
        lines.append(f"{indent}]{trail}")
    elif isinstance(value, str):
        pieces = [_quoted(piece) for piece in _pieces(value)]
        hanging = " " * len(lead)
        lines.append(f"{indent}{lead}{pieces[0]}" + (trail if len(pieces) == 1 else ""))
        lines.extend(f"{indent}{hanging}{piece}" for piece in pieces[1:-1])
        if len(pieces) > 1:
            lines.append(f"{indent}{hanging}{pieces[-1]}{trail}")
    else:
        lines.append(f"{indent}{lead}{orjson.dumps(value).decode()}{trail}")


def _quoted(text: str) -> str:
    return escape_invisible(orjson.dumps(text).decode("utf-8"))


def _pieces(text: str) -> list[str]:
    """``text`` cut after each newline and, when long, after each sentence; joined, they give it back."""
    if len(text) <= WRAP_AT and "\n" not in text[:-1]:
        return [text]
    boundary = SENTENCE_END if len(text) > WRAP_AT else LINE_END
    pieces = [piece for piece in boundary.split(text) if piece]
    return pieces or [text]


def definition_diff(
    old: ToolDefinition, new: ToolDefinition, *, context: int = 3, max_lines: int = MAX_DIFF_LINES
) -> list[str]:
    """A unified diff, line by line, from the approved definition to the one now served.

    Both sides are :func:`review_lines`, so hidden characters show as escapes. The headers name each
    side's short hash. Identical definitions give an empty list. Past ``max_lines`` the diff is cut and a
    last line says how many lines were left out.
    """
    if old == new:
        return []
    lines = difflib.unified_diff(
        review_lines(old),
        review_lines(new),
        fromfile=f"approved {old.name} {old.hash[:12]}",
        tofile=f"served {new.name} {new.hash[:12]}",
        n=context,
        lineterm="",
    )
    shown: list[str] = []
    left_out = 0
    for line in lines:
        if len(shown) < max_lines:
            shown.append(line)
        else:
            left_out += 1
    if left_out:
        shown.append(f"... {left_out} more diff lines not shown")
    return shown
