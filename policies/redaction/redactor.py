"""The compiled redactor: chosen detectors plus an action and a mode, applied to text or JSON.

Built once per policy change and shared by every call. ``redact_json`` joins every string of a
result with :data:`VALUE_SEPARATOR` and runs each detector once over the joined text, so the cost
per call is one pass per detector whatever the number of strings (the phone, card, SSN and IPv4
patterns pass over the text's :mod:`~policies.redaction.digit_windows` only), then maps the spans
back and copies only the containers that hold a changed string.

Overlapping spans (an AWS key id that is also the local part of an e-mail address, a span of a
plug-in detector inside a built-in one) merge into one redaction labelled by the longest span, the
earliest on a tie (earlier start, then the detector listed first): nothing is counted twice and
nothing is left half-shown. Dict keys and non-string values (numbers included) are not scanned.
"""

from __future__ import annotations

import hashlib
import hmac
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final, final

from policies.redaction.detectors import Detector, Span, TextScan, finder_of

VALUE_SEPARATOR: Final = "\x00"
PSEUDONYM_HEX_CHARS: Final = 8
MIN_PSEUDONYM_KEY_BYTES: Final = 16
DEFAULT_MAX_DEPTH: Final = 64

Counts = dict[str, int]
# (start, end, kind) within one string value.
Finding = tuple[int, int, str]


class RedactionAction(StrEnum):
    """What happens to a detected value under ``enforce``."""

    MASK = "mask"
    PSEUDONYM = "pseudonym"
    DROP = "drop"


class RedactionMode(StrEnum):
    """``enforce`` changes the result; ``monitor`` only counts what it would have changed."""

    ENFORCE = "enforce"
    MONITOR = "monitor"


@final
class Dropped:
    """The type of :data:`DROP`: the string value is to be removed with the field that holds it."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "DROP"


DROP: Final = Dropped()


class RedactionDepthError(ValueError):
    """The JSON value nests deeper than the redactor walks; the caller must not pass it on."""


@dataclass(frozen=True, slots=True)
class Redactor:
    """Detectors, an action and a mode, validated once; ``key`` is the tenant's pseudonym key.

    Raises ``ValueError`` on construction for no detectors, an unknown action or mode, a
    pseudonym action without a key of at least 16 bytes, or a depth limit below 1.
    """

    detectors: tuple[Detector, ...]
    action: RedactionAction = RedactionAction.MASK
    mode: RedactionMode = RedactionMode.ENFORCE
    key: bytes = field(default=b"", repr=False)
    max_depth: int = DEFAULT_MAX_DEPTH
    _finders: tuple[Callable[[TextScan], Iterable[Span]], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.detectors:
            raise ValueError("a redactor needs at least one detector")
        for detector in self.detectors:
            if not isinstance(detector, Detector):
                raise ValueError(f"{detector!r} is not a detector (name, kind, find)")
        object.__setattr__(self, "detectors", tuple(self.detectors))
        object.__setattr__(self, "_finders", tuple(map(finder_of, self.detectors)))
        object.__setattr__(self, "action", RedactionAction(self.action))
        object.__setattr__(self, "mode", RedactionMode(self.mode))
        if self.action is RedactionAction.PSEUDONYM and len(self.key) < MIN_PSEUDONYM_KEY_BYTES:
            raise ValueError(f"the pseudonym action needs a key of at least {MIN_PSEUDONYM_KEY_BYTES} bytes")
        if self.max_depth < 1:
            raise ValueError("max_depth must be at least 1")

    def redact_text(self, text: str) -> tuple[str | Dropped, Counts]:
        """The text with its detected values replaced (or :data:`DROP`), and the counts per kind.

        Under ``monitor`` the text comes back unchanged, with the counts it would have had.
        """
        findings = self._scan([text])
        counts = _count(findings)
        if not findings or self.mode is RedactionMode.MONITOR:
            return text, counts
        return self._rewrite(text, findings[0]), counts

    def redact_json(self, value: object) -> tuple[object, Counts]:
        """The JSON value with every string redacted, and the counts per kind.

        Dict keys are left as they are. Under ``drop`` a dict field or list item whose string
        holds a detection is removed; a top-level string is returned as :data:`DROP`. Raises
        :class:`RedactionDepthError` past ``max_depth`` nested containers.

        ``value`` itself comes back when nothing is to change, and is never modified: when
        something changes, the containers on the way to each change are new, and the others are
        shared with ``value``.
        """
        strings: list[str] = []
        sizes: list[tuple[int, int]] = []
        _collect_strings(value, strings, sizes, self.max_depth)
        findings = self._scan(strings) if strings else {}
        counts = _count(findings)
        if not findings or self.mode is RedactionMode.MONITOR:
            return value, counts
        replacements = {index: self._rewrite(strings[index], found) for index, found in findings.items()}
        return _Rebuild.of(replacements, sizes, len(strings)).value(value), counts

    def _scan(self, strings: list[str]) -> dict[int, list[Finding]]:
        """Findings per string index, overlaps merged, in text order."""
        joined = strings[0] if len(strings) == 1 else VALUE_SEPARATOR.join(strings)
        scan = TextScan(joined)
        spans: list[tuple[int, int, int]] = []
        for order, (detector, find) in enumerate(zip(self.detectors, self._finders, strict=True)):
            for span in find(scan):
                start, end = _checked_span(detector, span, len(joined))
                spans.append((start, end, order))
        if not spans:
            return {}
        return _split_by_string(_merge(spans, self.detectors), strings)

    def _rewrite(self, text: str, findings: list[Finding]) -> str | Dropped:
        if self.action is RedactionAction.DROP:
            return DROP
        parts: list[str] = []
        previous = 0
        for start, end, kind in findings:
            parts.append(text[previous:start])
            parts.append(self._token(kind, text[start:end]))
            previous = end
        parts.append(text[previous:])
        return "".join(parts)

    def _token(self, kind: str, value: str) -> str:
        if self.action is RedactionAction.MASK:
            return f"[REDACTED:{kind}]"
        message = f"{kind}{VALUE_SEPARATOR}{value}".encode("utf-8", "surrogatepass")
        digest = hmac.new(self.key, message, hashlib.sha256).hexdigest()
        return f"[{kind}:{digest[:PSEUDONYM_HEX_CHARS]}]"


def _checked_span(detector: Detector, span: object, length: int) -> tuple[int, int]:
    """The span as two ints inside the text; a detector returning anything else is a bug."""
    if (
        isinstance(span, tuple)
        and len(span) == 2
        and type(span[0]) is int
        and type(span[1]) is int
        and 0 <= span[0] < span[1] <= length
    ):
        return span[0], span[1]
    raise ValueError(
        f"detector {detector.name!r} returned {span!r}; a span is (start, end) "
        f"with 0 <= start < end <= {length}"
    )


def _merge(spans: list[tuple[int, int, int]], detectors: tuple[Detector, ...]) -> list[Finding]:
    """Merge overlapping spans; each merged span takes the kind of its longest member."""
    spans.sort(key=lambda span: (span[0], -span[1], span[2]))
    merged: list[Finding] = []
    start, end, order = spans[0]
    best = end - start
    for next_start, next_end, next_order in spans[1:]:
        if next_start < end:
            if next_end - next_start > best:
                best, order = next_end - next_start, next_order
            end = max(end, next_end)
            continue
        merged.append((start, end, detectors[order].kind))
        start, end, order = next_start, next_end, next_order
        best = end - start
    merged.append((start, end, detectors[order].kind))
    return merged


def _split_by_string(findings: list[Finding], strings: list[str]) -> dict[int, list[Finding]]:
    """Map spans of the joined text to spans of each string; a span across a separator is split."""
    offsets: list[int] = []
    position = 0
    for text in strings:
        offsets.append(position)
        position += len(text) + len(VALUE_SEPARATOR)
    result: dict[int, list[Finding]] = {}
    for start, end, kind in findings:
        index = bisect_right(offsets, start) - 1
        while index < len(strings) and offsets[index] < end:
            local_start = max(start - offsets[index], 0)
            local_end = min(end - offsets[index], len(strings[index]))
            if local_start < local_end:
                result.setdefault(index, []).append((local_start, local_end, kind))
            index += 1
    return result


def _count(findings: dict[int, list[Finding]]) -> Counts:
    counts: Counts = {}
    for found in findings.values():
        for _, _, kind in found:
            counts[kind] = counts.get(kind, 0) + 1
    return counts


def _collect_strings(
    value: object, strings: list[str], sizes: list[tuple[int, int]], depth_left: int
) -> None:
    """Append every string value in walk order (dict values in order, list items in order), and for
    each container, in walk order, where its strings and its containers end (the numbers of strings
    and containers collected once the walk leaves it)."""
    if isinstance(value, str):
        strings.append(value)
    elif isinstance(value, dict | list):
        if depth_left == 0:
            raise RedactionDepthError("the JSON value nests too deeply to be redacted")
        slot = len(sizes)
        sizes.append(_NOT_YET_COUNTED)
        items = value.values() if isinstance(value, dict) else value
        for item in items:
            if isinstance(item, str):
                strings.append(item)
            elif isinstance(item, dict | list):
                _collect_strings(item, strings, sizes, depth_left - 1)
        sizes[slot] = (len(strings), len(sizes))


_NOT_YET_COUNTED: Final = (0, 0)


@dataclass(slots=True)
class _Rebuild:
    """The JSON value with replacement ``i`` in place of the i-th string in walk order.

    Only the containers holding a replaced string (and those holding them) are copied; the others,
    skipped whole thanks to the ``sizes`` the collection counted, are kept as they are: the result
    shares them with the value given.
    """

    replacements: dict[int, str | Dropped]
    sizes: list[tuple[int, int]]
    # The replaced indices in order, then one past the last string.
    changes: list[int]
    index: int = 0
    container: int = 0

    @classmethod
    def of(
        cls, replacements: dict[int, str | Dropped], sizes: list[tuple[int, int]], strings: int
    ) -> _Rebuild:
        return cls(replacements, sizes, [*sorted(replacements), strings])

    def value(self, value: object) -> object:
        if isinstance(value, str):
            return self._string(value)
        if isinstance(value, dict | list):
            strings_end, containers_end = self.sizes[self.container]
            if self.changes[bisect_left(self.changes, self.index)] >= strings_end:
                self.index, self.container = strings_end, containers_end
                return value
            self.container += 1
            return self._dict(value) if isinstance(value, dict) else self._list(value)
        return value

    def _string(self, value: str) -> str | Dropped:
        replacement = self.replacements.get(self.index, value)
        self.index += 1
        return replacement

    def _dict(self, value: dict[object, object]) -> dict[object, object]:
        result: dict[object, object] = {}
        new: object
        for key, item in value.items():
            # Strings and scalars inline: this loop runs once per value of the changed containers.
            if isinstance(item, str):
                new = self.replacements.get(self.index, item)
                self.index += 1
            elif isinstance(item, dict | list):
                new = self.value(item)
            else:
                new = item
            if new is not DROP:
                result[key] = new
        return result

    def _list(self, value: list[object]) -> list[object]:
        return [new for new in map(self.value, value) if new is not DROP]
