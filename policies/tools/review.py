"""What a reviewer is told about a tool definition before it may reach an agent.

:func:`review_definition` is the one list of reasons to hold a definition for approval: the poisoning
scan's findings (hidden characters, text addressed to the model, URLs off the trusted hosts, references
to other tools' secrets), an input schema the gateway cannot use to validate arguments, and schema
patterns that could make that validation take exponential time. Any finding holds the definition,
whatever the target's approval setting.
"""

from __future__ import annotations

from collections.abc import Collection

from policies.tools.arguments import ArgumentValidator, InvalidInputSchema, compile_input_schema
from policies.tools.definitions import ToolDefinition, escape_invisible
from policies.tools.poisoning import EXCERPT_CHARS, Finding, FindingKind, scan_definition


def review_definition(
    definition: ToolDefinition, *, allowed_url_hosts: Collection[str] = ()
) -> list[Finding]:
    """Every reason to hold ``definition``; an empty list lets a target that auto-approves approve it."""
    findings = scan_definition(definition, allowed_url_hosts=allowed_url_hosts)
    if definition.input_schema is None:
        return findings
    try:
        validator = compile_input_schema(definition.input_schema)
    except InvalidInputSchema as error:
        detail = f"arguments cannot be validated: {error}"
        findings.append(Finding(FindingKind.INVALID_SCHEMA, "inputSchema", "", detail[:300]))
        return findings
    findings.extend(
        Finding(
            FindingKind.RISKY_PATTERN,
            "inputSchema",
            escape_invisible(pattern[:EXCERPT_CHARS]),
            "a repeated group that repeats again can make validation take exponential time",
        )
        for pattern in validator.risky_patterns
    )
    return findings


def input_validator(definition: ToolDefinition) -> ArgumentValidator | None:
    """The compiled input schema of an approved definition, or None when it has none or it is unusable.

    An unusable schema was a finding when the definition was reviewed; an admin who approved it anyway
    chose to forward the tool's calls unvalidated.
    """
    if definition.input_schema is None:
        return None
    try:
        return compile_input_schema(definition.input_schema)
    except InvalidInputSchema:
        return None
