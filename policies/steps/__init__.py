"""Policy steps of the proxy pipeline, by sub-domain: scope (allow-rules, trimmed listings) and
protection (response filters and redaction)."""

from policies.steps.protection import protect_response, select_protections
from policies.steps.scope import check_scope, filter_listings

__all__ = ["check_scope", "filter_listings", "protect_response", "select_protections"]
