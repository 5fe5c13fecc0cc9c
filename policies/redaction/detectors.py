"""Detectors find sensitive values in text; the registry names the rule-based ones.

A detector is anything with a ``name`` (what an admin types: ``email``), a ``kind`` (the label a
redaction shows: ``EMAIL``) and ``find(text)`` returning ``(start, end)`` spans of ``text``. The
rule-based detectors here are a regular expression, written to run in time linear in the text,
followed by a check (Luhn, mod-97, a decodable JWT header ...) that rejects look-alikes.

A model-based entity recogniser is one more detector; the :class:`~policies.redaction.redactor.Redactor`
needs no change to use it::

    @dataclass(frozen=True, slots=True)
    class PersonNameDetector:
        name: str = "person"
        kind: str = "PERSON"
        model: NerModel = field(default_factory=load_model)

        def find(self, text: str) -> Iterable[tuple[int, int]]:
            return ((e.start, e.end) for e in self.model(text) if e.label == "PER")

    Redactor(detectors=(*resolve_detectors("email"), PersonNameDetector()), ...)

The text a detector sees may hold several values separated by ``NUL`` (see
:data:`~policies.redaction.redactor.VALUE_SEPARATOR`); a span should not cross one, and the redactor
splits any that does.

The built-in detectors also have ``find_in(scan)``: the same spans as ``find(scan.text)``, found
faster by sharing work between detectors through a :class:`TextScan` (the phone, card, SSN and IPv4
patterns scan only the :class:`~policies.redaction.digit_windows.DigitWindows` of the text). A
detector without it is called with ``find``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Protocol, runtime_checkable

from policies.redaction.api_keys import api_key_pattern
from policies.redaction.checksums import (
    digit_count_between,
    iban_prefix_length,
    ip_address_valid,
    jwt_header_valid,
    luhn_valid,
    ssn_valid,
)
from policies.redaction.digit_windows import DigitWindows, character_classes

Span = tuple[int, int]


@runtime_checkable
class Detector(Protocol):
    """Finds values of one kind in text."""

    @property
    def name(self) -> str:
        """The name an admin selects the detector by, lower case (``email``)."""
        ...

    @property
    def kind(self) -> str:
        """The label counted and shown in a mask, upper case (``EMAIL``)."""
        ...

    def find(self, text: str) -> Iterable[Span]:
        """Spans ``(start, end)`` of ``text``, 0 <= start < end <= len(text), in any order."""
        ...


@runtime_checkable
class ScanningDetector(Detector, Protocol):
    """A detector that can share work with the others scanning the same text."""

    def find_in(self, scan: TextScan) -> Iterable[Span]:
        """Exactly the spans of ``find(scan.text)``."""
        ...


class TextScan:
    """The text every detector of a redactor scans, and views of it computed once for all of them."""

    __slots__ = ("_classes", "_digit_windows", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._classes: bytes | None = None
        self._digit_windows: DigitWindows | None = None

    @property
    def classes(self) -> bytes:
        """The text's :func:`~policies.redaction.digit_windows.character_classes` (computed on first use)."""
        if self._classes is None:
            self._classes = character_classes(self.text)
        return self._classes

    @property
    def digit_windows(self) -> DigitWindows:
        """Where the digit-only values can be (computed on first use)."""
        if self._digit_windows is None:
            self._digit_windows = DigitWindows.of(self.text, self.classes)
        return self._digit_windows


def finder_of(detector: Detector) -> Callable[[TextScan], Iterable[Span]]:
    """``find_in`` of a detector that has it (the built-in ones), else ``find`` on the scan's text."""
    if isinstance(detector, ScanningDetector):
        return detector.find_in
    return lambda scan: detector.find(scan.text)


def _always(_: str) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class PatternDetector:
    """A compiled pattern whose matches are kept when ``accept`` says so.

    A match right after one of the ``not_after`` characters is dropped: for a pattern led by a
    literal prefix this test is cheaper than a lookbehind, which stops the engine from jumping
    straight to the prefix.

    ``digit_gated`` lets ``find_in`` scan only the text's digit windows. Set it only for a pattern
    whose every match is made of ``0-9 ().+-`` and holds four digits or more, whose look-behinds
    read at most one character before the match (``not_after`` reads one) and look-aheads at most
    two after it: the windows then give the very same spans (see
    :mod:`~policies.redaction.digit_windows`).
    """

    name: str
    kind: str
    pattern: re.Pattern[str]
    accept: Callable[[str], bool] = _always
    not_after: str = ""
    digit_gated: bool = False

    def find(self, text: str) -> Iterator[Span]:
        """Spans of the accepted matches, left to right."""
        accept, not_after = self.accept, self.not_after
        for match in self.pattern.finditer(text):
            start = match.start()
            if not_after and start and text[start - 1] in not_after:
                continue
            if accept(match.group()):
                yield match.span()

    def find_in(self, scan: TextScan) -> Iterator[Span]:
        """The spans of ``find(scan.text)``, from the digit windows when the pattern is gated."""
        if not self.digit_gated:
            return self.find(scan.text)
        windows = scan.digit_windows
        return windows.spans(self.find(windows.text))


@dataclass(frozen=True, slots=True)
class AnchoredDetector:
    """A pattern matched from a distinctive character on (an e-mail's ``@``), then extended left.

    Starting at the rare character lets the engine skip most of the text. The span then takes in
    up to ``extend_max`` characters of ``extend_over`` before the match (needing at least
    ``extend_min``), and is dropped when the character before it is one of ``not_after`` or
    ``accept`` rejects it. ``digit_gated`` is as for :class:`PatternDetector`, counting the
    extension and the ``not_after`` test as part of the match and its look-behind.
    """

    name: str
    kind: str
    pattern: re.Pattern[str]
    extend_over: str
    extend_max: int
    extend_min: int = 0
    not_after: str = ""
    accept: Callable[[str], bool] = _always
    digit_gated: bool = False

    def find(self, text: str) -> Iterator[Span]:
        """Spans of the accepted, extended matches, left to right."""
        for match in self.pattern.finditer(text):
            anchor, end = match.span()
            window = text[max(anchor - self.extend_max, 0) : anchor]
            extended = len(window) - len(window.rstrip(self.extend_over))
            start = anchor - extended
            if extended < self.extend_min or (start and text[start - 1] in self.not_after):
                continue
            if self.accept(text[start:end]):
                yield start, end

    def find_in(self, scan: TextScan) -> Iterator[Span]:
        """The spans of ``find(scan.text)``, from the digit windows when the pattern is gated."""
        if not self.digit_gated:
            return self.find(scan.text)
        windows = scan.digit_windows
        return windows.spans(self.find(windows.text))


@dataclass(frozen=True, slots=True)
class CompositeDetector:
    """One named detector made of several (IPv4 and IPv6 are both ``ip``)."""

    name: str
    kind: str
    parts: tuple[Detector, ...]
    _finders: tuple[Callable[[TextScan], Iterable[Span]], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_finders", tuple(map(finder_of, self.parts)))

    def find(self, text: str) -> list[Span]:
        """The spans of every part, left to right; a span overlapping an earlier, longer one is left out."""
        return _without_overlaps(span for part in self.parts for span in part.find(text))

    def find_in(self, scan: TextScan) -> list[Span]:
        """The spans of ``find(scan.text)``, each part sharing the scan's work where it can."""
        return _without_overlaps(span for find in self._finders for span in find(scan))


def _without_overlaps(spans: Iterable[Span]) -> list[Span]:
    kept: list[Span] = []
    for start, end in sorted(spans, key=lambda s: (s[0], -s[1])):
        if not kept or start >= kept[-1][1]:
            kept.append((start, end))
    return kept


_IBAN: Final = re.compile(r"[A-Z](?<![A-Za-z0-9][A-Z])[A-Z][0-9]{2}(?: ?[A-Z0-9]){11,32}")
# Where an IBAN can start, in character classes (it cannot overlap itself: every start is found).
_IBAN_START_CLASSES: Final = re.compile(rb"UUdd")


@dataclass(frozen=True, slots=True)
class IbanDetector:
    """IBANs, compact or printed in groups of four, checked by country length and mod-97."""

    name: str = "iban"
    kind: str = "IBAN"
    pattern: re.Pattern[str] = _IBAN

    def find(self, text: str) -> Iterator[Span]:
        """Spans of valid IBANs; characters after the country's length are not included."""
        for match in self.pattern.finditer(text):
            yield from _valid_iban(match)

    def find_in(self, scan: TextScan) -> Iterator[Span]:
        """The spans of ``find(scan.text)``; the built-in pattern is tried only where the text has two
        capitals then two digits (found in the scan's character classes by a literal search), and
        from the end of each match on, as ``finditer`` does."""
        if self.pattern is not _IBAN:
            yield from self.find(scan.text)
            return
        text, resume = scan.text, 0
        for candidate in _IBAN_START_CLASSES.finditer(scan.classes):
            if candidate.start() >= resume and (match := _IBAN.match(text, candidate.start())):
                resume = match.end()
                yield from _valid_iban(match)


def _valid_iban(match: re.Match[str]) -> Iterator[Span]:
    candidate = match.group()
    length = iban_prefix_length(candidate.replace(" ", ""))
    if length:
        yield match.start(), match.start() + _printed_length(candidate, length)


def _printed_length(printed: str, compact_length: int) -> int:
    """How many characters of ``printed`` (with spaces) hold its first ``compact_length`` non-spaces."""
    seen = 0
    for index, char in enumerate(printed):
        if char != " ":
            seen += 1
            if seen == compact_length:
                return index + 1
    return len(printed)


_LOCAL_PART_CHARS: Final = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-"
_HEX_CHARS: Final = "0123456789abcdefABCDEF"
_DIGIT_CHARS: Final = "0123456789"
_WORD_CHARS: Final = _LOCAL_PART_CHARS[:62] + "_"

# Every pattern starts with a literal or one character class, and any "not preceded by" check
# comes after that first character (or, for api_key, in Python on the few matches): the regular
# expression engine then jumps between candidate positions instead of trying the whole pattern
# at every character. E-mail and IP patterns start at their rarest character ("@", ".", ":").
_EMAIL_DOMAIN = re.compile(
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}(?![A-Za-z0-9-])"
)
# E.164, compact (+14155552671) or with separators (+44 20 7946 0958, +1 (415) 555-2671)
_PHONE_INTERNATIONAL = re.compile(
    r"\+(?<![\w+.-]\+)[1-9](?:[0-9]{6,14}(?![0-9])"
    r"|[0-9]{0,3}(?:[ .-]?\([0-9]{1,5}\)|[ .-][0-9]{1,5}){2,6}(?![0-9]))(?![\w-])"
)
# North American: (415) 555-2671, 415-555-2671, 415.555.2671, 415 555 2671
_PHONE_NANP_PARENTHESES = re.compile(r"\((?<![\w+.-]\()[0-9]{3}\) ?[0-9]{3}[-. ][0-9]{4}(?![\w-])")
_PHONE_NANP = re.compile(r"[0-9](?<![\w+.-][0-9])[0-9]{2}[-. ][0-9]{3}[-. ][0-9]{4}(?![\w-])")
_CARD = re.compile(r"[2-6](?<![0-9][2-6])(?:[ -]?[0-9]){12,18}(?![0-9])")
_SSN = re.compile(r"[0-8](?<![0-9-][0-8])[0-9]{2}([- ])[0-9]{2}\1[0-9]{4}(?![0-9-])")
# From an address's first dot; the one to three digits before it are added by AnchoredDetector.
_IPV4_FROM_DOT = re.compile(r"\.(?<=[0-9]\.)(?:[0-9]{1,3}\.){2}[0-9]{1,3}(?![\w]|\.[0-9])")
# From an address's first colon; up to four hex digits before it are added by AnchoredDetector.
_IPV6_FROM_COLON = re.compile(
    # Only a first colon: not one preceded by another colon and up to four hex digits. At least one
    # more colon follows (every IPv6 address has two), so the lone colons of JSON text ("a":"b")
    # are not candidates: they were 98 % of the IP detector's cost on a JSON tools/call result.
    r":(?<!::)(?<!:[0-9A-Fa-f]:)(?<!:[0-9A-Fa-f]{2}:)(?<!:[0-9A-Fa-f]{3}:)(?<!:[0-9A-Fa-f]{4}:)"
    r"(?:[0-9A-Fa-f]{0,4}:){1,6}(?:(?:[0-9]{1,3}\.){3}[0-9]{1,3}|[0-9A-Fa-f]{0,4})(?![\w:])"
)
_JWT = re.compile(r"eyJ(?<![\w-]eyJ)[A-Za-z0-9_-]++\.[A-Za-z0-9_-]++\.[A-Za-z0-9_-]*+")
_PRIVATE_KEY = re.compile(
    r"-----BEGIN (?:[A-Z0-9]{1,20} ){0,3}PRIVATE KEY(?: BLOCK)?-----"
    # The body stops at the next "-----", so a run of BEGIN lines without END stays linear; an
    # END line is optional because a truncated key is still a secret.
    r"(?:[A-Za-z0-9+/=\s:,.()\\]|-(?!----))*+"
    r"(?:-----END (?:[A-Z0-9]{1,20} ){0,3}PRIVATE KEY(?: BLOCK)?-----)?"
)
_API_KEY = re.compile(api_key_pattern())


def _phone_accept(candidate: str) -> bool:
    return digit_count_between(candidate, 7, 15)


# 64: the longest local part RFC 5321 allows; a longer run is redacted from its last 64 characters.
EMAIL: Final = AnchoredDetector(
    "email", "EMAIL", _EMAIL_DOMAIN, extend_over=_LOCAL_PART_CHARS, extend_max=64, extend_min=1
)
PHONE: Final = CompositeDetector(
    "phone",
    "PHONE",
    tuple(
        PatternDetector("phone", "PHONE", pattern, _phone_accept, digit_gated=True)
        for pattern in (_PHONE_INTERNATIONAL, _PHONE_NANP_PARENTHESES, _PHONE_NANP)
    ),
)
CARD: Final = PatternDetector("card", "CARD", _CARD, luhn_valid, digit_gated=True)
IBAN: Final = IbanDetector()
SSN: Final = PatternDetector("ssn", "SSN", _SSN, ssn_valid, digit_gated=True)
IP: Final = CompositeDetector(
    "ip",
    "IP",
    (
        AnchoredDetector(
            "ipv4",
            "IP",
            _IPV4_FROM_DOT,
            _DIGIT_CHARS,
            3,
            extend_min=1,
            not_after=_WORD_CHARS + ".:",
            accept=ip_address_valid,
            digit_gated=True,
        ),
        AnchoredDetector(
            "ipv6",
            "IP",
            _IPV6_FROM_COLON,
            _HEX_CHARS,
            4,
            not_after=_WORD_CHARS + ".:",
            accept=ip_address_valid,
        ),
    ),
)
JWT: Final = PatternDetector("jwt", "JWT", _JWT, jwt_header_valid)
PRIVATE_KEY: Final = PatternDetector("private_key", "PRIVATE_KEY", _PRIVATE_KEY)
API_KEY: Final = PatternDetector("api_key", "API_KEY", _API_KEY, not_after=_WORD_CHARS + "-")

ALL: Final = "all"
DETECTORS: Final[Mapping[str, Detector]] = MappingProxyType(
    {detector.name: detector for detector in (EMAIL, PHONE, CARD, IBAN, SSN, IP, JWT, PRIVATE_KEY, API_KEY)}
)


def resolve_detectors(names: str | Iterable[str]) -> tuple[Detector, ...]:
    """The registered detectors for ``"email,card"`` (or a list of names), in the order given.

    ``all`` stands for every detector; names are case-insensitive and repeats are ignored.
    Raises ``ValueError`` naming the valid names for an unknown or empty selection.
    """
    wanted = names.split(",") if isinstance(names, str) else list(names)
    chosen: dict[str, Detector] = {}
    for raw in wanted:
        name = raw.strip().lower()
        if name == ALL:
            chosen.update(DETECTORS)
        elif name in DETECTORS:
            chosen.setdefault(name, DETECTORS[name])
        elif name:
            raise ValueError(f"unknown detector {raw.strip()!r}; valid names: {_valid_names()}")
    if not chosen:
        raise ValueError(f"no detector named; valid names: {_valid_names()}")
    return tuple(chosen.values())


def _valid_names() -> str:
    return ", ".join((*DETECTORS, ALL))
