"""The tool poisoning scan: hidden instructions in a tool's definition, found before the model sees them.

:func:`scan_definition` reads every string of a definition (name, title, description, both schemas and
the annotations, object keys included: a property name reaches the model too) and reports:

``tag_characters``
    Unicode tag characters (U+E0000-U+E007F): invisible, yet many models read them as ASCII.
``bidi_control``
    Bidi embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069), which make the text a
    reviewer sees differ from the text the model reads.
``zero_width``
    Zero-width characters (U+200B-U+200D, U+2060, U+FEFF). A lone ZWNJ or ZWJ (U+200C, U+200D) is
    allowed, because Persian, Indic scripts and emoji sequences need it; a run of two or more, or any
    other of them, is reported.
``model_instruction``
    Text addressed to the model rather than describing the tool (:data:`PHRASE_RULES`).
``url``
    An embedded ``http``, ``https`` or ``data:`` URL: a place to exfiltrate to, or content to fetch.
    URLs on ``allowed_url_hosts`` (and their subdomains) are not reported.
``secret_reference``
    References to credential files or to other tools' secrets (:data:`PHRASE_RULES`).

Phrases are matched case-insensitively, with any run of whitespace between words, after removing the
hidden characters above and applying NFKC (so ``ig\\u200bnore`` and full-width letters are still
caught). Every regex is linear: literal words joined by possessive ``\\s++``, bounded repetitions only.
A :class:`Finding` carries a short excerpt in which invisible characters are shown escaped, never as the
raw hidden text. The number of findings is capped (:data:`MAX_FINDINGS`).
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from policies.tools.definitions import JSONValue, ToolDefinition, escape_invisible

MAX_FINDINGS = 100
MAX_URLS_PER_STRING = 5
#: A string's phrase matches are read up to this many; past it the count says "at least".
MAX_MATCHES_PER_STRING = 1000
EXCERPT_CHARS = 120
EXCERPT_CONTEXT = 30


class FindingKind(StrEnum):
    """What the scan found."""

    TAG_CHARACTERS = "tag_characters"
    BIDI_CONTROL = "bidi_control"
    ZERO_WIDTH = "zero_width"
    MODEL_INSTRUCTION = "model_instruction"
    URL = "url"
    SECRET_REFERENCE = "secret_reference"  # noqa: S105 - a finding kind, not a secret
    TOO_MANY_FINDINGS = "too_many_findings"
    # Found by policies.tools.review, not by the text scan: the input schema cannot be used, or one of
    # its patterns could make argument validation take exponential time.
    INVALID_SCHEMA = "invalid_schema"
    RISKY_PATTERN = "risky_pattern"


@dataclass(frozen=True, slots=True)
class Finding:
    """One reason to hold a definition: its kind, where it is, a safe excerpt and a short detail."""

    kind: FindingKind
    location: str
    excerpt: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        """The finding as JSON for the audit event, the admin and the CLI."""
        return {
            "kind": str(self.kind),
            "location": self.location,
            "excerpt": self.excerpt,
            "detail": self.detail,
        }


TAG_RUNS = re.compile("[\U000e0000-\U000e007f]+")
BIDI_RUNS = re.compile("[\u202a-\u202e\u2066-\u2069]+")
ZERO_WIDTH_RUNS = re.compile("[\u200b-\u200d\u2060\ufeff]+")
HIDDEN = re.compile("[\U000e0000-\U000e007f\u202a-\u202e\u2066-\u2069\u200b-\u200d\u2060\ufeff]+")
JOINERS = frozenset("\u200c\u200d")
#: Python's case-insensitive regexes match ``i`` to U+0130 and U+0131, which ``str.lower`` keeps apart.
I_FOLD = {0x131: "i", 0x307: None}

WS = r"\s++"
NOT = rf"(?:do{WS}not|don['\u2019]?t|never)"
CREDENTIAL_NOUNS = r"(?:api[\s_-]*+keys?|tokens?|credentials?|secrets?|passwords?|keys?)"
#: (label, kind, triggers, pattern) for text addressed to the model and for references to secrets. The
#: label is what the admin sees as the finding's detail. Every match contains one of the (lower-case)
#: triggers, so a rule whose triggers are all absent is skipped without running its regex: a substring
#: test costs far less per character than Python's regex engine trying a pattern at every position.
PHRASE_RULES: tuple[tuple[str, FindingKind, tuple[str, ...], str], ...] = (
    (
        "tells the model to ignore its instructions",
        FindingKind.MODEL_INSTRUCTION,
        ("ignore", "disregard", "forget", "override", "bypass"),
        rf"\b(?:ignore|disregard|forget|override|bypass){WS}(?:(?:all|any|every|the|your|of|these|those)"
        rf"{WS}){{0,3}}(?:previous|prior|above|earlier|preceding|former|original|other|system|safety)"
        rf"{WS}(?:instructions?|prompts?|rules|directions|guidelines|messages|context|constraints)\b",
    ),
    (
        "tells the model to disregard something",
        FindingKind.MODEL_INSTRUCTION,
        ("disregard",),
        rf"\bdisregard{WS}(?:all|any|everything|the|your|these|those|previous|prior|above|earlier|safety)\b",
    ),
    (
        "tells the model to keep something from the user",
        FindingKind.MODEL_INSTRUCTION,
        ("user", "human", "person", "operator"),
        rf"\b(?:{NOT}|without){WS}(?:tell|inform|notify|alert|warn|show|let|mention(?:ing)?{WS}"
        rf"(?:this|it|that){WS}to)(?:ing)?{WS}(?:the{WS})?(?:users?|humans?|person|operator)\b",
    ),
    (
        "tells the model to hide something from the user",
        FindingKind.MODEL_INSTRUCTION,
        ("hid", "conceal", "keep"),
        rf"\b(?:hide|hiding|conceal|concealing|keep|keeping){WS}(?:(?:this|it|that|them){WS})?"
        rf"(?:(?:secret|hidden){WS})?from{WS}(?:the{WS})?(?:users?|humans?)\b",
    ),
    (
        "acts without the user knowing",
        FindingKind.MODEL_INSTRUCTION,
        ("without",),
        rf"\bwithout{WS}(?:the{WS})?(?:users?|humans?)(?:['\u2019]s)?{WS}"
        rf"(?:knowing|knowledge|noticing|awareness|consent|seeing)\b",
    ),
    (
        "tells the model not to mention or reveal something",
        FindingKind.MODEL_INSTRUCTION,
        ("mention", "reveal", "disclose"),
        rf"\b{NOT}{WS}(?:mention|reveal|disclose)\b",
    ),
    (
        "an <IMPORTANT>-style tag addressed to the model",
        FindingKind.MODEL_INSTRUCTION,
        ("<",),
        r"<\s*+/?\s*+(?:important|system|instructions?|secret|hidden|admin|critical)\b[^<>\n]{0,40}+>",
    ),
    (
        "mentions the system prompt",
        FindingKind.MODEL_INSTRUCTION,
        ("system",),
        rf"\bsystem{WS}(?:prompt|message)s?\b",
    ),
    (
        "tries to re-assign the model's role",
        FindingKind.MODEL_INSTRUCTION,
        ("now",),
        rf"\byou{WS}are{WS}now\b",
    ),
    (
        "announces new instructions",
        FindingKind.MODEL_INSTRUCTION,
        ("instruction",),
        rf"\b(?:new|updated|real|actual|true|hidden|secret|additional){WS}instructions?\s*+:",
    ),
    (
        "gives orders about other tools (shadowing)",
        FindingKind.MODEL_INSTRUCTION,
        ("when", "other"),
        rf"\b(?:when{WS}this{WS}tool{WS}is{WS}(?:available|present|loaded|installed|enabled)|"
        rf"(?:all|every|any){WS}other{WS}tools?{WS}(?:must|should|shall))\b",
    ),
    (
        "asks for the conversation history",
        FindingKind.MODEL_INSTRUCTION,
        ("history",),
        rf"\b(?:send|pass|include|add|append|forward|upload|post|leak|copy){WS}"
        rf"(?:(?:the|all|any|your|its|their|entire|full|whole){WS}){{0,2}}(?:conversation|chat|message)"
        rf"{WS}history\b",
    ),
    (
        "names a credential file",
        FindingKind.SECRET_REFERENCE,
        (
            "ssh",
            "aws",
            "gnupg",
            "kube",
            "docker",
            "netrc",
            "npmrc",
            "pypirc",
            "pgpass",
            "git-credentials",
            ".env",
            "cursor",
            "claude",
            "id_",
            ".json",
            "/etc/",
        ),
        r"(?<![\w.-])(?:\.ssh|\.aws|\.gnupg|\.kube|\.docker|\.netrc|\.npmrc|\.pypirc|\.pgpass"
        r"|\.git-credentials|\.env(?:\.\w++)?|\.cursor|\.claude)\b"
        r"|\bid_(?:rsa|dsa|ecdsa|ed25519)\b|\b(?:mcp|claude_desktop_config|credentials)\.json\b"
        r"|/etc/(?:passwd|shadow)\b",
    ),
    (
        "asks for another tool's or service's secrets",
        FindingKind.SECRET_REFERENCE,
        ("api", "tool", "server", "service", "integration"),
        rf"\bapi[\s_-]*+keys?{WS}(?:of|from)\b|\b(?:other|another|all|every){WS}(?:other{WS})?"
        rf"(?:tools?|servers?|services?|integrations?)(?:['\u2019]s?)?{WS}{CREDENTIAL_NOUNS}\b",
    ),
)


@dataclass(frozen=True, slots=True)
class PhraseRule:
    """One compiled phrase rule: what it reports, the words that gate it, and its regex."""

    label: str
    kind: FindingKind
    triggers: tuple[str, ...]
    regex: re.Pattern[str]

    def may_match(self, lowered: str) -> bool:
        """False when no trigger occurs in the lower-cased text, so the regex cannot match."""
        for trigger in self.triggers:
            if trigger in lowered:
                return True
        return False


PHRASES = tuple(
    PhraseRule(label, kind, triggers, re.compile(pattern, re.IGNORECASE))
    for label, kind, triggers, pattern in PHRASE_RULES
)
URLS = re.compile(
    r"\b(?:https?://[^\s\"'<>`\\]++|data:[a-z0-9.+-]++/[a-z0-9.+-]++[;,][^\s\"'<>`\\]*+)", re.IGNORECASE
)
URL_TRAILING = ".,;:!?)]}"
PLAIN_KEY = re.compile(r"[A-Za-z_$][A-Za-z0-9_$-]*+")


def scan_definition(definition: ToolDefinition, *, allowed_url_hosts: Collection[str] = ()) -> list[Finding]:
    """Every finding, string by string in document order, at most :data:`MAX_FINDINGS` (then a marker).

    Within one string: hidden characters, then phrases in :data:`PHRASE_RULES` order, then URLs.

    An empty list means nothing suspicious was seen, not that the tool is safe.
    """
    allowed = tuple(host.lower().strip(".") for host in allowed_url_hosts if host)
    findings: list[Finding] = []
    for location, text, is_key in _strings(definition.as_json()):
        for finding in scan_text(text, location=location, allowed_url_hosts=allowed):
            if len(findings) == MAX_FINDINGS:
                findings.append(Finding(FindingKind.TOO_MANY_FINDINGS, location, "", "scan stopped here"))
                return findings
            if is_key:
                finding = Finding(
                    finding.kind, finding.location, finding.excerpt, f"in a key: {finding.detail}"
                )
            findings.append(finding)
    return findings


def _strings(value: JSONValue) -> Iterator[tuple[str, str, bool]]:
    """(location, string, is_key) for every string and object key, depth-first in document order."""
    stack: list[tuple[str, JSONValue]] = [("", value)]
    while stack:
        location, current = stack.pop()
        if isinstance(current, str):
            yield location, current, False
        elif isinstance(current, dict):
            children = []
            for key, child in current.items():
                member = _member(location, key)
                yield member, key, True
                children.append((member, child))
            stack.extend(reversed(children))
        elif isinstance(current, list):
            stack.extend(reversed([(f"{location}[{index}]", child) for index, child in enumerate(current)]))


def _member(location: str, key: str) -> str:
    """``a.b`` for a plain key, ``a["odd key"]`` (escaped) otherwise."""
    if PLAIN_KEY.fullmatch(key):
        return f"{location}.{key}" if location else key
    quoted = escape_invisible(key.replace("\\", "\\\\").replace('"', '\\"'))
    return f'{location}["{_clip(quoted)}"]'


def scan_text(text: str, *, location: str, allowed_url_hosts: tuple[str, ...] = ()) -> list[Finding]:
    """The findings in one string: hidden characters first, then phrases, then URLs."""
    findings: list[Finding] = []
    visible = text
    if not text.isascii():
        findings.extend(_hidden_characters(text, location))
        visible = unicodedata.normalize("NFKC", HIDDEN.sub("", text))
    lowered = fold_case(visible)
    findings.extend(_phrases(visible, lowered, location))
    if "http" in lowered or "data:" in lowered:
        findings.extend(_urls(visible, location, allowed_url_hosts))
    return findings


def _hidden_characters(text: str, location: str) -> Iterator[Finding]:
    for kind, runs, name in (
        (FindingKind.TAG_CHARACTERS, TAG_RUNS, "tag character"),
        (FindingKind.BIDI_CONTROL, BIDI_RUNS, "bidi control"),
        (FindingKind.ZERO_WIDTH, ZERO_WIDTH_RUNS, "zero-width character"),
    ):
        flagged = [match for match in runs.finditer(text) if _is_flagged(kind, match.group())]
        if flagged:
            characters = sum(len(match.group()) for match in flagged)
            detail = f"{characters} {name}{'s' if characters > 1 else ''} in {len(flagged)} run(s)"
            yield Finding(kind, location, _excerpt(text, flagged[0].start(), flagged[0].end()), detail)


def _is_flagged(kind: FindingKind, run: str) -> bool:
    return kind is not FindingKind.ZERO_WIDTH or len(run) > 1 or run not in JOINERS


def fold_case(text: str) -> str:
    """Lower-case text for the trigger tests; the dotted and dotless i fold to ``i`` as the regexes do."""
    lowered = text.lower()
    return lowered if lowered.isascii() else lowered.translate(I_FOLD)


def _phrases(text: str, lowered: str, location: str) -> Iterator[Finding]:
    for rule in PHRASES:
        if not rule.may_match(lowered):
            continue
        matches = rule.regex.finditer(text)
        first = next(matches, None)
        if first is None:
            continue
        times = 1 + sum(1 for _ in itertools.islice(matches, MAX_MATCHES_PER_STRING - 1))
        at_least = "at least " if times == MAX_MATCHES_PER_STRING else ""
        detail = rule.label if times == 1 else f"{rule.label} ({at_least}{times} times)"
        yield Finding(rule.kind, location, _excerpt(text, first.start(), first.end()), detail)


def _urls(text: str, location: str, allowed_hosts: tuple[str, ...]) -> Iterator[Finding]:
    reported: set[str] = set()
    for match in URLS.finditer(text):
        url = match.group().rstrip(URL_TRAILING)
        if url in reported or _is_allowed(url, allowed_hosts):
            continue
        reported.add(url)
        detail = "embedded data: URL" if url[:5].lower() == "data:" else f"embedded URL to {_host(url)}"
        yield Finding(FindingKind.URL, location, _clip(escape_invisible(url)), detail)
        if len(reported) == MAX_URLS_PER_STRING:
            return


def _host(url: str) -> str:
    try:
        return escape_invisible(urlsplit(url).hostname or "an unparsable host")
    except ValueError:
        return "an unparsable host"


def _is_allowed(url: str, allowed_hosts: tuple[str, ...]) -> bool:
    if not allowed_hosts or url[:5].lower() == "data:":
        return False
    host = _host(url).lower()
    return any(host == allowed or host.endswith("." + allowed) for allowed in allowed_hosts)


def _excerpt(text: str, start: int, end: int) -> str:
    """The match with a little context, whitespace collapsed, invisibles escaped, clipped."""
    before = text[max(0, start - EXCERPT_CONTEXT) : start]
    window = before + text[start : min(end, start + EXCERPT_CHARS)] + text[end : end + EXCERPT_CONTEXT]
    prefix = "…" if start > EXCERPT_CONTEXT else ""
    return _clip(prefix + escape_invisible(" ".join(window.split())))


def _clip(text: str) -> str:
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"
