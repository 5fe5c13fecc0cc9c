"""Tool definitions: pinning (canonical hash, diff), the poisoning scan and argument validation.

Pure functions and frozen objects, with no database access; the proxy steps, models and admin that
use them live elsewhere.
"""

from policies.tools.arguments import (
    ArgumentError,
    ArgumentValidator,
    InvalidInputSchema,
    compile_input_schema,
)
from policies.tools.definitions import (
    ToolDefinition,
    ToolDefinitionError,
    canonical_json,
    definition_diff,
    escape_invisible,
)
from policies.tools.poisoning import Finding, FindingKind, scan_definition
from policies.tools.review import input_validator, review_definition

__all__ = [
    "ArgumentError",
    "ArgumentValidator",
    "Finding",
    "FindingKind",
    "InvalidInputSchema",
    "ToolDefinition",
    "ToolDefinitionError",
    "canonical_json",
    "compile_input_schema",
    "definition_diff",
    "escape_invisible",
    "input_validator",
    "review_definition",
    "scan_definition",
]
