"""Response content filters: JSON paths compiled once, applied to the MCP result shapes."""

from policies.content.filters import (
    CompiledFilter,
    FilterCount,
    FilterMode,
    FilterOutcome,
    UnfilterableContent,
    apply_filters,
    apply_to_message_bytes,
    compile_filter,
    filter_message_bytes,
)
from policies.content.paths import CompiledPath, compile_json_path

__all__ = [
    "CompiledFilter",
    "CompiledPath",
    "FilterCount",
    "FilterMode",
    "FilterOutcome",
    "UnfilterableContent",
    "apply_filters",
    "apply_to_message_bytes",
    "compile_filter",
    "compile_json_path",
    "filter_message_bytes",
]
