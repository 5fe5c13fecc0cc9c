"""Argument validation: a tool's ``inputSchema`` compiled once, ``tools/call`` arguments checked per call.

:func:`compile_input_schema` picks the jsonschema validator class from the schema's ``$schema`` (draft
2020-12 when absent or unknown, as MCP specifies), checks the schema against its metaschema once and
resolves its local ``$ref``s once, so an admin sees a broken schema when the definition is pinned, not on
the first call. The gateway never fetches a remote ``$ref``: its registry holds only the metaschemas.

``format`` is not checked by default. Draft 2020-12 treats ``format`` as an annotation; whether a value
passes would depend on which optional format libraries happen to be installed (so the same call could be
refused on one gateway and forwarded by another), and some format checkers run costly regular
expressions on agent-supplied text. The upstream remains responsible for the meaning of its values.

``pattern`` and ``patternProperties`` do run Python's backtracking regex engine on agent-supplied text.
A schema pattern with a repeated group that itself repeats (``^(a+)+$``) can take exponential time, so
:func:`risky_patterns` lists such patterns on the compiled validator for the admin to review.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import jsonschema
import jsonschema.exceptions
import jsonschema.protocols
import jsonschema.validators
import referencing
import referencing.exceptions
import referencing.jsonschema

from policies.tools.definitions import MAX_DEPTH, JSONValue, ToolDefinitionError, check_json_value

#: At most this many errors are reported for one call, and each message is clipped.
MAX_ERRORS = 20
MAX_MESSAGE_CHARS = 200
DEFAULT_VALIDATOR = jsonschema.Draft202012Validator
DATA_KEYWORDS = frozenset({"default", "const", "enum", "examples"})
QUANTIFIER = re.compile(r"(?:[*+?]|\{\d*+(?:,\d*+)?\})[?+]?")
QUANTIFIER_FIXED = re.compile(r"\{\d++\}[?+]?")
#: ``{n,}`` and bounds above a hundred count as unbounded: ``(a+){1,1000}`` backtracks like ``(a+)+``.
QUANTIFIER_UNBOUNDED = re.compile(r"\{\d*+,(?:\d{4,}+|[1-9]\d{2}|)\}[?+]?")
#: A registry without a ``retrieve`` function: a $ref it does not hold is unresolvable, never fetched.
NO_RETRIEVAL: referencing.Registry[Any] = referencing.Registry()
NESTED_TOO_DEEPLY = f"arguments are nested deeper than {MAX_DEPTH} levels"


class InvalidInputSchema(ValueError):
    """A tool's ``inputSchema`` that cannot be used; the message is meant for the admin."""


@dataclass(frozen=True, slots=True)
class ArgumentError:
    """One reason a call's arguments were refused: the JSON Pointer of the failing value and why."""

    path: str
    message: str

    def as_dict(self) -> dict[str, str]:
        """The error as JSON, for the ``data`` of a JSON-RPC -32602 error."""
        return {"path": self.path, "message": self.message}


@dataclass(frozen=True, slots=True)
class ArgumentValidator:
    """A compiled input schema; :meth:`errors` checks one call's arguments against it."""

    dialect: str
    validator: jsonschema.protocols.Validator
    #: Patterns the admin should look at before approving (see :func:`risky_patterns`).
    risky_patterns: tuple[str, ...] = ()

    def errors(self, arguments: object, *, limit: int = MAX_ERRORS) -> list[ArgumentError]:
        """The first ``limit`` errors in ``arguments`` (missing or null counts as ``{}``); [] when valid."""
        instance = {} if arguments is None else arguments
        try:
            check_json_value(instance)
        except ToolDefinitionError:
            return [ArgumentError("", NESTED_TOO_DEEPLY)]
        try:
            found = itertools.islice(self.validator.iter_errors(instance), limit)
            return [_argument_error(error) for error in found]
        except referencing.exceptions.Unresolvable as error:
            return [ArgumentError("", _clip(f"the tool's input schema has an unresolvable $ref: {error}"))]
        except RecursionError:
            return [ArgumentError("", "the tool's input schema recurses too deeply for these arguments")]

    def is_valid(self, arguments: object) -> bool:
        """Whether the arguments pass (stops at the first error)."""
        return not self.errors(arguments, limit=1)


def compile_input_schema(schema: object, *, check_formats: bool = False) -> ArgumentValidator:
    """Compile a tool's input schema once; raise InvalidInputSchema naming what is wrong with it."""
    if not isinstance(schema, dict | bool):
        raise InvalidInputSchema(f"an input schema must be a JSON object, not {type(schema).__name__}")
    try:
        check_json_value(schema)
    except ToolDefinitionError as error:
        raise InvalidInputSchema(str(error)) from error
    cls = _validator_class(schema)
    _check_against_metaschema(schema, cls)
    _check_local_refs(schema, cls)
    format_checker = cls.FORMAT_CHECKER if check_formats else None
    # jsonschema adds the metaschemas and this schema itself to the registry it is given.
    validator = cls(schema, registry=NO_RETRIEVAL, format_checker=format_checker)
    return ArgumentValidator(
        dialect=_dialect(cls), validator=validator, risky_patterns=risky_patterns(schema)
    )


def _validator_class(schema: dict[str, Any] | bool) -> type[jsonschema.protocols.Validator]:
    """The class named by ``$schema``; draft 2020-12 when it is absent or not one jsonschema knows."""
    cls: type[jsonschema.protocols.Validator] = jsonschema.validators.validator_for(
        schema, default=DEFAULT_VALIDATOR
    )
    return cls


def _dialect(cls: type[jsonschema.protocols.Validator]) -> str:
    return str(cls.META_SCHEMA.get("$id") or cls.META_SCHEMA.get("id") or cls.__name__)


def _check_local_refs(schema: dict[str, Any] | bool, cls: type[jsonschema.protocols.Validator]) -> None:
    """Resolve every ``$ref`` that points into the schema itself (``#...``) once, at compile time."""
    specification = referencing.jsonschema.specification_with(
        _dialect(cls), default=referencing.jsonschema.DRAFT202012
    )
    resource = referencing.Resource.from_contents(schema, default_specification=specification)
    resolver = NO_RETRIEVAL.resolver_with_root(resource)
    for ref in _refs(schema):
        if not ref.startswith("#"):
            continue
        try:
            resolver.lookup(ref)
        except referencing.exceptions.Unresolvable as error:
            raise InvalidInputSchema(_clip(f"$ref {ref!r} does not resolve: {error}")) from error


def _subschemas(schema: JSONValue) -> Iterator[dict[str, Any]]:
    """Every object in the schema that is a subschema of the root's base URI.

    Values of data keywords (``default``, ``const``, ``enum``, ``examples``) are data, not schemas, and
    a subschema with its own ``$id`` starts a new base URI, so neither is entered.
    """
    stack = [schema]
    while stack:
        current = stack.pop()
        if isinstance(current, list):
            stack.extend(current)
        elif isinstance(current, dict) and (current is schema or not _has_own_id(current)):
            yield current
            stack.extend(value for key, value in current.items() if key not in DATA_KEYWORDS)


def _has_own_id(schema: dict[str, Any]) -> bool:
    return isinstance(schema.get("$id"), str) or isinstance(schema.get("id"), str)


def _refs(schema: JSONValue) -> Iterator[str]:
    for subschema in _subschemas(schema):
        ref = subschema.get("$ref")
        if isinstance(ref, str):
            yield ref


def risky_patterns(schema: JSONValue) -> tuple[str, ...]:
    """The ``pattern`` and ``patternProperties`` regexes with a repeated group that itself repeats.

    Python's regex engine backtracks, so a pattern such as ``^(a+)+$`` can take exponential time on
    an argument the agent chooses. This is a conservative syntactic check (it also lists some safe
    patterns, e.g. ``(?:[a-z]+\\.)+``); the admin decides, it does not refuse the schema.
    """
    found: list[str] = []
    for subschema in _subschemas(schema):
        candidates = [subschema.get("pattern")]
        pattern_properties = subschema.get("patternProperties")
        if isinstance(pattern_properties, dict):
            candidates.extend(pattern_properties)
        found.extend(p for p in candidates if isinstance(p, str) and has_nested_quantifier(p))
    return tuple(dict.fromkeys(found))


def has_nested_quantifier(pattern: str) -> bool:
    """Whether a group holding a variable quantifier is itself repeated without bound (``(a+)+``).

    One left-to-right pass: escapes and character classes are skipped, a stack records for each open
    group whether a quantifier occurred inside it.
    """
    inner: list[bool] = [False]
    closed_group_repeats = False
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            index += 2
            closed_group_repeats = False
            continue
        if char == "[":
            index = _after_class(pattern, index)
            closed_group_repeats = False
            continue
        if char == "(":
            inner.append(False)
            index += 2 if pattern.startswith("(?", index) else 1
            closed_group_repeats = False
            continue
        if char == ")" and len(inner) > 1:
            closed_group_repeats = inner.pop()
            inner[-1] = inner[-1] or closed_group_repeats
            index += 1
            continue
        end = _after_quantifier(pattern, index)
        if end == index:
            closed_group_repeats = False
            index += 1
            continue
        if closed_group_repeats and _unbounded(pattern[index:end]):
            return True
        inner[-1] = inner[-1] or QUANTIFIER_FIXED.fullmatch(pattern[index:end]) is None
        closed_group_repeats = False
        index = end
    return False


def _after_class(pattern: str, index: int) -> int:
    """The index just past the character class opening at ``index`` (or the end of the pattern)."""
    index += 1
    if pattern.startswith("^", index):
        index += 1
    if pattern.startswith("]", index):
        index += 1
    while index < len(pattern) and pattern[index] != "]":
        index += 2 if pattern[index] == "\\" else 1
    return index + 1


def _after_quantifier(pattern: str, index: int) -> int:
    """The index past a quantifier (with its lazy or possessive mark) at ``index``; ``index`` if none."""
    match = QUANTIFIER.match(pattern, index)
    return match.end() if match else index


def _unbounded(quantifier: str) -> bool:
    return quantifier[0] in "*+" or QUANTIFIER_UNBOUNDED.fullmatch(quantifier) is not None


def _check_against_metaschema(
    schema: dict[str, Any] | bool, cls: type[jsonschema.protocols.Validator]
) -> None:
    """Raise InvalidInputSchema with the most relevant metaschema error (what ``check_schema`` does)."""
    metaschema_validator = cls(cls.META_SCHEMA)
    best = jsonschema.exceptions.best_match(metaschema_validator.iter_errors(schema))
    if best is not None:
        where = _pointer(best.absolute_path) or "/"
        raise InvalidInputSchema(_clip(f"the input schema is invalid at {where}: {best.message}"))


def _argument_error(error: jsonschema.exceptions.ValidationError) -> ArgumentError:
    return ArgumentError(_pointer(error.absolute_path), _clip(error.message))


def _pointer(path: Any) -> str:
    """A JSON Pointer (RFC 6901) for a jsonschema path: ``/items/0/count``; "" is the whole value."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


def _clip(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE_CHARS else message[: MAX_MESSAGE_CHARS - 1] + "…"
