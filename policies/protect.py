"""Response protection for one request: which filters and redactors apply to each call, and applying
them to a JSON-RPC body, with counts (never values) for the audit event.

Every member that carries upstream data to the agent is protected:

- a ``result`` is filtered, then redacted, so a value a filter deletes is never scanned (nor
  counted) by a detector;
- an ``error`` has its ``message`` and ``data`` redacted (filters are JSON paths on results: they
  do not apply);
- a server-initiated request or notification (``notifications/message`` log data,
  ``sampling/createMessage`` params...) has its ``params`` redacted.

The JSON-RPC frame (``jsonrpc``, ``id``, ``method``, ``error.code``) is never changed. A reply
whose id matches no request of the call, and every server-initiated message (its id is the
server's, not the agent's), gets every protection the call selected (fail closed: an upstream
cannot dodge a filter by answering with another id). A result under that fallback is read in the
shape its members show (``content``/``structuredContent``, ``contents``, ``messages``), so a
filter still reaches a ``tools/call`` result replayed on the session's GET stream.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from policies.compiler import CompiledCredential, RouteScope, ScopedRedactor
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
    return _select(credential, target_id, jsonrpc_method, lambda route: route.matches(method, path))


def select_for_target(credential: CompiledCredential, target_id: int) -> CallProtections | None:
    """Every filter and redactor of ``credential`` for ``target_id``, whatever its route, or None.

    For what no single call's route decides: the session's GET stream carries server-initiated
    messages and, on resumption, replayed replies to any call of the session.
    """
    return _select(credential, target_id, "", lambda route: True)


def _select(
    credential: CompiledCredential, target_id: int | None, method: str, applies: Callable[[RouteScope], bool]
) -> CallProtections | None:
    """The filters and redactors of ``credential`` for ``target_id`` (or for any target) whose route
    scope ``applies``, in stack order, or None when there are none."""
    filters = tuple(
        scoped.filter
        for scoped in credential.filters
        if scoped.target_id in (None, target_id) and applies(scoped.route)
    )
    redactors = tuple(
        scoped
        for scoped in credential.redactors
        if scoped.target_id in (None, target_id) and applies(scoped.route)
    )
    if not filters and not redactors:
        return None
    return CallProtections(method, filters, redactors)


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
    """The JSON-RPC body (one message or a batch) with every result filtered, then redacted, and every
    error and server-initiated message redacted.

    The very same ``body`` comes back when nothing changed (monitor mode, nothing found). Raises
    UnfilterableContent (not JSON, or too deep to write back) and RedactionDepthError.
    """
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise UnfilterableContent("the response is not JSON the gateway can read and protect") from None
    if protections.whole_document:
        holder = {"result": payload}
        changed = _protect_result(holder, protections.fallback, protections.fallback.method, tally)
        payload = holder["result"]
    else:
        changed = False
        for message in payload if isinstance(payload, list) else (payload,):
            if isinstance(message, dict):
                changed |= _protect_jsonrpc(message, protections, tally)
    if not changed:
        return body
    try:
        return orjson.dumps(payload)
    except orjson.JSONEncodeError:
        raise UnfilterableContent("the protected response is nested too deeply to write") from None


def _protect_jsonrpc(
    message: dict[str, Any], protections: RequestProtections, tally: ProtectionTally
) -> bool:
    """One message of an MCP reply: a server-initiated one's params, a reply's result or error."""
    if "method" in message:
        # Its id, if any, is the server's own and may equal one of the agent's: never look it up.
        return "params" in message and _redact_member(message, "params", protections.fallback, tally)
    call = protections.for_id(message.get("id"))
    if "result" in message:
        return _protect_result(message, call, call.method or _shape_of(message["result"]), tally)
    error = message.get("error")
    if not isinstance(error, dict):
        return False
    changed = False
    if "message" in error:
        changed |= _redact_error_message(error, call, tally)
    if "data" in error:
        changed |= _redact_member(error, "data", call, tally)
    return changed


def _protect_result(
    message: dict[str, Any], call: CallProtections, method: str, tally: ProtectionTally
) -> bool:
    outcome = apply_filters(method, message["result"], call.filters)
    tally.add_filters(outcome)
    # A dropped result becomes an empty one: ``result`` is required of a reply.
    return _redact_member(message, "result", call, tally, dropped=lambda counts: {}) or outcome.changed


def _redact_member(
    holder: dict[str, Any],
    key: str,
    call: CallProtections,
    tally: ProtectionTally,
    *,
    dropped: Callable[[Mapping[str, int]], object] | None = None,
) -> bool:
    """Redact ``holder[key]`` with each redactor of ``call``. Under ``drop``, the member goes with its
    value, unless it is a required one: then ``dropped(counts)`` takes its place and the next
    redactors see that."""
    changed = False
    for scoped in call.redactors:
        value, counts = scoped.redactor.redact_json(holder[key])
        tally.add_redaction(scoped, counts)
        if value is DROP and dropped is None:
            del holder[key]
            return True
        if value is not holder[key]:
            holder[key] = dropped(counts) if value is DROP and dropped is not None else value
            changed = True
    return changed


def _redact_error_message(error: dict[str, Any], call: CallProtections, tally: ProtectionTally) -> bool:
    """Redact ``error.message``. It is a required member, so the ``drop`` action does not delete it:
    the whole message is replaced by the mask text of what was found (``[REDACTED:EMAIL]``)."""
    return _redact_member(
        error, "message", call, tally, dropped=lambda counts: "".join(f"[REDACTED:{kind}]" for kind in counts)
    )


def _shape_of(result: Any) -> str:
    """The method whose result shape ``result`` shows, for a result whose request is not known ("" when
    it shows none: it is then filtered as one document)."""
    if not isinstance(result, dict):
        return ""
    if "content" in result or "structuredContent" in result:
        return "tools/call"
    if "contents" in result:
        return "resources/read"
    if "messages" in result:
        return "prompts/get"
    return ""
