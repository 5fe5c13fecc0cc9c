"""Response protection for one request: which filters and redactors apply to each call, and applying
them to a JSON-RPC body, with counts (never values) for the audit event.

Filters run first, then redaction, so a value a filter deletes is never scanned (nor counted) by a
detector. Only ``result`` members are touched: requests, notifications and errors pass as they are.
A result whose id matches no request of the call gets every protection the call selected (fail
closed: an upstream cannot dodge a filter by answering with another id).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from policies.compiler import CompiledCredential, ScopedRedactor
from policies.content import CompiledFilter, FilterOutcome, UnfilterableContent, apply_filters
from policies.redaction import DROP


@dataclass(frozen=True, slots=True)
class CallProtections:
    """The filters and redactors that apply to one call (one JSON-RPC request), in stack order."""

    method: str
    filters: tuple[CompiledFilter, ...]
    redactors: tuple[ScopedRedactor, ...]


@dataclass(frozen=True, slots=True)
class RequestProtections:
    """What ``select_protections`` chose: per request id, and the union for a result of unknown id."""

    by_id: Mapping[Any, CallProtections]
    fallback: CallProtections
    # A plain HTTP target's reply is one JSON document, filtered and redacted as a whole.
    whole_document: bool = False

    def for_id(self, message_id: Any) -> CallProtections:
        if isinstance(message_id, (str, int, float)) and not isinstance(message_id, bool):
            found = self.by_id.get(message_id)
            if found is not None:
                return found
        return self.fallback


def select_for_call(
    credential: CompiledCredential, target_id: int | None, method: str, path: str, jsonrpc_method: str
) -> CallProtections | None:
    """The protections of ``credential`` for a call of ``method path`` to ``target_id``, or None.

    With ``target_id`` None, only those that apply whatever the target (``check_access`` without one).
    """
    filters = tuple(
        scoped.filter
        for scoped in credential.filters
        if scoped.target_id in (None, target_id) and scoped.route.matches(method, path)
    )
    redactors = tuple(
        scoped
        for scoped in credential.redactors
        if scoped.target_id in (None, target_id) and scoped.route.matches(method, path)
    )
    if not filters and not redactors:
        return None
    return CallProtections(jsonrpc_method, filters, redactors)


def union(calls: Iterable[CallProtections]) -> CallProtections:
    """Every filter and redactor of ``calls``, once each, in the order first seen."""
    filters: dict[int, CompiledFilter] = {}
    redactors: dict[int, ScopedRedactor] = {}
    for call in calls:
        filters.update((f.id, f) for f in call.filters if f.id not in filters)
        redactors.update((r.id, r) for r in call.redactors if r.id not in redactors)
    return CallProtections("", tuple(filters.values()), tuple(redactors.values()))


@dataclass(slots=True)
class ProtectionTally:
    """Counts for the audit event, summed over the messages (and events) of one response."""

    removed: dict[int, list[Any]] = field(default_factory=dict)  # filter id -> [mode, removed]
    redacted: dict[int, tuple[str, str, Counter[str]]] = field(default_factory=dict)

    def add_filters(self, outcome: FilterOutcome) -> None:
        for count in outcome.counts:
            entry = self.removed.setdefault(count.filter_id, [count.mode, 0])
            entry[1] += count.removed

    def add_redaction(self, scoped: ScopedRedactor, counts: Mapping[str, int]) -> None:
        redactor = scoped.redactor
        entry = self.redacted.setdefault(scoped.id, (str(redactor.mode), str(redactor.action), Counter()))
        entry[2].update(counts)

    def as_audit(self) -> dict[str, Any]:
        """``{"filters": [{filter, mode, removed}], "redactions": [{policy, mode, action, kinds}]}``."""
        return {
            "filters": [
                {"filter": fid, "mode": mode, "removed": removed}
                for fid, (mode, removed) in self.removed.items()
            ],
            "redactions": [
                {"policy": pid, "mode": mode, "action": action, "kinds": dict(kinds)}
                for pid, (mode, action, kinds) in self.redacted.items()
            ],
        }


def protect_body(body: bytes, protections: RequestProtections, tally: ProtectionTally) -> bytes:
    """The JSON-RPC body (one message or a batch) with every result filtered, then redacted.

    The very same ``body`` comes back when nothing changed (monitor mode, nothing found). Raises
    UnfilterableContent (not JSON, or too deep to write back) and RedactionDepthError.
    """
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise UnfilterableContent("the response is not JSON the gateway can read and protect") from None
    if protections.whole_document:
        holder = {"result": payload}
        changed = _protect_message(holder, protections.fallback, tally)
        payload = holder["result"]
    else:
        changed = False
        for message in payload if isinstance(payload, list) else (payload,):
            if isinstance(message, dict) and "result" in message and "method" not in message:
                changed |= _protect_message(message, protections.for_id(message.get("id")), tally)
    if not changed:
        return body
    try:
        return orjson.dumps(payload)
    except orjson.JSONEncodeError:
        raise UnfilterableContent("the protected response is nested too deeply to write") from None


def _protect_message(message: dict[str, Any], call: CallProtections, tally: ProtectionTally) -> bool:
    outcome = apply_filters(call.method, message["result"], call.filters)
    tally.add_filters(outcome)
    changed = outcome.changed
    for scoped in call.redactors:
        result, counts = scoped.redactor.redact_json(message["result"])
        tally.add_redaction(scoped, counts)
        if result is not message["result"]:
            message["result"] = {} if result is DROP else result
            changed = True
    return changed
