"""Policy steps of the proxy pipeline, by sub-domain: scope (allow-rules, trimmed listings) and
protection (response filters and redaction), tools (pinned definitions, argument validation)."""

from policies.steps.protection import protect_response, select_protections
from policies.steps.scope import check_scope, filter_listings
from policies.steps.tools import check_tool_calls, pin_listed_tools, validate_arguments

__all__ = [
    "check_scope",
    "check_tool_calls",
    "filter_listings",
    "pin_listed_tools",
    "protect_response",
    "select_protections",
    "validate_arguments",
]
