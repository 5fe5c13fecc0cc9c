"""PII and secret redaction: pluggable detectors and the compiled redactor that applies them."""

from policies.redaction.detectors import DETECTORS, Detector, PatternDetector, Span, resolve_detectors
from policies.redaction.redactor import (
    DROP,
    Dropped,
    RedactionAction,
    RedactionDepthError,
    RedactionMode,
    Redactor,
)

__all__ = [
    "DETECTORS",
    "DROP",
    "Detector",
    "Dropped",
    "PatternDetector",
    "RedactionAction",
    "RedactionDepthError",
    "RedactionMode",
    "Redactor",
    "Span",
    "resolve_detectors",
]
