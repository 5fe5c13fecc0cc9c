"""The few parts of a text where a phone, card, SSN or IPv4 value can be, found in one fast pass.

Those values are made only of the characters of :data:`DIGIT_VALUE_CHARS` and hold at least four
digits, so each lies inside a maximal run of those characters that holds four digits or more (a
*core*). JSON text is mostly letters and punctuation: the cores of a 100 KB tools/call result are
about 3 % of it. The digit detectors then scan the cores, each cut out with the characters around
it that their look-arounds read, instead of the whole text, and their spans are mapped back. The
cores are found over :func:`character_classes` (one byte per character), which the IBAN detector
also uses to find where an IBAN can start.

Why the spans are exactly the ones a scan of the whole text finds, for a detector that qualifies
(see ``PatternDetector.digit_gated``):

- a match holds only value characters, so it cannot cross the character before or after a core
  (not one of them, by maximality) or a text edge: every match lies inside one core, or outside
  all of them, and matches inside a core are found the same whatever is outside it;
- whether a match starts at a position of a core, and where it ends, depends only on the core and
  on the :data:`CONTEXT_BEFORE` characters before it and :data:`CONTEXT_AFTER` after it (the widest
  look-behind reads one character before a match, the widest look-ahead two after its end), which
  are cut out with it; a core at a text edge is the first or last window, so the edge is kept too;
- matches outside every core (made of the context characters of neighbouring windows: three at
  most, too few to hold four digits) are dropped.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final

Span = tuple[int, int]

DIGIT_VALUE_CHARS: Final = "0123456789().+ -"
CONTEXT_BEFORE: Final = 1
CONTEXT_AFTER: Final = 2
_CLASSES: Final = bytes(
    ord("d")
    if chr(byte) in "0123456789"
    else ord("s")
    if chr(byte) in "().+ -"
    else ord("U")
    if chr(byte) in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    else ord("x")
    for byte in range(256)
)
# A first digit, three more with only value characters between, then the rest of the run. Led by
# a literal byte, the engine jumps between digits faster than a character class lets it; the value
# characters before the first digit are added in Python.
_CORE_FROM_FIRST_DIGIT: Final = re.compile(rb"d(?:s*+d){3}[ds]*+")


def character_classes(text: str) -> bytes:
    """Each character of ``text`` as one byte naming its class: ``d`` an ASCII digit, ``s`` one of
    `` ().+-``, ``U`` an ASCII capital, ``x`` anything else (one C pass; Latin-1 with ``?`` for the
    other characters keeps one byte per character, so positions are the text's)."""
    return text.encode("latin-1", "replace").translate(_CLASSES)


@dataclass(frozen=True, slots=True)
class DigitWindows:
    """The cores of a text, each with its context, joined into ``text``; spans map back through it.

    ``window_starts[i]`` is where window ``i`` starts in ``text``; its core is
    ``core_bounds[i]`` there, and ``shifts[i]`` turns a position in ``text`` into one of the
    original text.
    """

    text: str
    window_starts: tuple[int, ...]
    core_bounds: tuple[Span, ...]
    shifts: tuple[int, ...]

    @classmethod
    def of(cls, text: str, classes: bytes) -> DigitWindows:
        """The windows of ``text``: one pass of a regular expression over its ``character_classes``."""
        value_chars = DIGIT_VALUE_CHARS
        pieces: list[str] = []
        starts: list[int] = []
        cores: list[Span] = []
        shifts: list[int] = []
        joined_length = 0
        for match in _CORE_FROM_FIRST_DIGIT.finditer(classes):
            start, end = match.span()
            while start and text[start - 1] in value_chars:
                start -= 1
            low, high = max(start - CONTEXT_BEFORE, 0), end + CONTEXT_AFTER
            piece = text[low:high]
            starts.append(joined_length)
            cores.append((joined_length + start - low, joined_length + end - low))
            shifts.append(low - joined_length)
            pieces.append(piece)
            joined_length += len(piece)
        return cls("".join(pieces), tuple(starts), tuple(cores), tuple(shifts))

    def spans(self, found: Iterable[Span]) -> Iterator[Span]:
        """The spans of ``found`` (spans of :attr:`text`) that lie inside a core, in the original text."""
        starts, cores, shifts = self.window_starts, self.core_bounds, self.shifts
        for start, end in found:
            index = bisect_right(starts, start) - 1
            core_start, core_end = cores[index]
            if core_start <= start and end <= core_end:
                yield start + shifts[index], end + shifts[index]
