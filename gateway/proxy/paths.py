"""Request paths normalised once, from the raw bytes the agent sent, for matching and forwarding.

The scope's ``raw_path`` (still percent-encoded) is decoded segment by segment, dot segments are
resolved and empty segments dropped. That one form gives the target slug, the sub-path the
allow-rules are matched on and, re-encoded, the path the upstream receives: what was checked is
what is sent, and it can never climb out of the target's base path.

What cannot be normalised safely is refused rather than guessed at, because upstream servers
disagree on it: an encoded slash or backslash inside a segment, a literal backslash, ``;`` path
parameters, control characters, non-ASCII raw bytes, malformed or double percent-escapes, and
percent-escapes that do not decode to UTF-8.
"""

from __future__ import annotations

import posixpath
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import quote, unquote

from gateway.proxy.errors import InvalidRequest

SLUG = re.compile(r"[-a-zA-Z0-9_]+")
PROXY_ROOT = "mcp"

# Raw bytes (as latin-1 text) a request path may not hold: anything outside printable ASCII,
# a backslash, ";" (path parameters), and a "%" that does not start a well-formed escape.
_UNSAFE_RAW = re.compile(r"[^\x21-\x7e]|\\|;|%(?![0-9A-Fa-f]{2})|%25")
# Characters a decoded segment may not hold: a slash or backslash (they were encoded, so the
# agent meant them inside a segment, which upstreams read differently) and control characters.
_UNSAFE_DECODED = re.compile(r"[/\\\x00-\x1f\x7f-\x9f]")
_UNSAFE_QUERY = re.compile(r"[^\x21-\x7e]")
# Characters of a segment sent upstream as they are (RFC 3986 pchar, less ";" which some servers
# still read as a path parameter); everything else is percent-encoded.
_SEGMENT_SAFE = "!$&'()*+,=:@"


@dataclass(frozen=True, slots=True)
class NormalizedPath:
    """A proxy path: the target slug (empty when the path names none) and the decoded sub-path.

    ``subpath`` is "" (no slash after the slug), "/" or "/a/b[/]": decoded, without dot segments
    or empty segments, so no segment holds a slash.
    """

    slug: str
    subpath: str


def normalize_proxy_path(raw_path: str) -> NormalizedPath:
    """Normalise ``/mcp/<slug>/<sub-path>`` from the raw path (latin-1 text of the scope's bytes).

    Raises InvalidRequest (400) for a path that cannot be normalised safely, or whose ``..``
    climbs above the target's root.
    """
    _refuse_unsafe_raw(raw_path)
    segments = [_decode_segment(part) for part in raw_path.split("/")]
    trailing_slash = len(segments) > 1 and segments[-1] in ("", ".", "..")
    named = [segment for segment in segments if segment]
    if len(named) < 2 or named[0] != PROXY_ROOT or not SLUG.fullmatch(named[1]):
        return NormalizedPath(slug="", subpath="")
    rest = posixpath.normpath("/".join(named[2:])) if len(named) > 2 else "."
    if rest == ".." or rest.startswith("../"):
        raise InvalidRequest("Invalid path: '..' climbs above the target's root")
    if rest == ".":
        return NormalizedPath(slug=named[1], subpath="/" if trailing_slash or len(named) > 2 else "")
    return NormalizedPath(slug=named[1], subpath=f"/{rest}/" if trailing_slash else f"/{rest}")


def check_query_string(query: str) -> None:
    """Raises InvalidRequest (400) for a query string holding spaces, control or non-ASCII bytes."""
    if _UNSAFE_QUERY.search(query):
        raise InvalidRequest(
            "Invalid query string: spaces, control characters and non-ASCII bytes must be percent-encoded"
        )


def encode_subpath(subpath: str) -> str:
    """The sub-path as sent upstream: each (slash-free) segment percent-encoded again."""
    return quote(subpath, safe="/" + _SEGMENT_SAFE)


def _refuse_unsafe_raw(raw_path: str) -> None:
    match = _UNSAFE_RAW.search(raw_path)
    if match is None:
        return
    char = match.group()
    if char == "\\":
        reason = "a backslash is not a path separator here"
    elif char == ";":
        reason = "';' path parameters are not accepted"
    elif char == "%25":
        reason = "a double percent-encoding (%25) is not accepted"
    elif char.startswith("%"):
        reason = "a '%' must start a two-digit percent-escape"
    elif char.isascii():
        reason = "control characters and spaces are not accepted"
    else:
        reason = "non-ASCII bytes must be percent-encoded"
    raise InvalidRequest(f"Invalid path: {reason}")


def _decode_segment(raw: str) -> str:
    if "%" not in raw:  # the raw path is printable ASCII already
        return raw
    try:
        segment = unquote(raw, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise InvalidRequest("Invalid path: percent-escapes must decode to UTF-8") from None
    if _UNSAFE_DECODED.search(segment):
        raise InvalidRequest(
            "Invalid path: an encoded slash, backslash or control character inside a segment is not accepted"
        )
    if not segment.isascii() and _folds_to_separator(segment):
        raise InvalidRequest("Invalid path: a segment that Unicode normalisation turns into a separator")
    return segment


def _folds_to_separator(segment: str) -> bool:
    """A segment some upstreams would read as a slash, backslash or dot segment once NFKC-normalised."""
    folded = unicodedata.normalize("NFKC", segment)
    return "/" in folded or "\\" in folded or folded in (".", "..")
