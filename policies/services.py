"""Policy writes (response filters, redaction policies, pinned tool definitions and their approval) and
policy simulation: what may this credential call, and why?"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.changes import record_change, snapshot
from audit.models import AuditEvent
from audit.records import AuditRecord, event_record, sanitise_record
from gateway.models import Credential, Target, Tenant
from gateway.proxy.errors import InvalidRequest
from gateway.proxy.paths import PROXY_ROOT, check_query_string, normalize_proxy_path
from gateway.updates import model_update
from policies.compiler import CompiledCredential, CompiledRule, CompiledTarget
from policies.models import Filter, PinnedTool, RedactionPolicy
from policies.tools import ToolDefinition, escape_invisible, review_definition


@dataclass(frozen=True)
class AccessDecision:
    """The outcome of checking one route against one credential's rules.

    ``judged_as`` is the route the rules were matched on (a plain HTTP path normalised as the proxy
    does); ``refused`` marks a path the proxy itself would refuse before any rule is read.
    """

    allowed: bool
    route: str
    rule: CompiledRule | None
    reason: str
    judged_as: str = ""
    refused: bool = False

    def as_dict(self) -> dict[str, object]:
        return {
            "decision": "refused" if self.refused else "allowed" if self.allowed else "denied",
            "route": self.route,
            "judged_as": self.judged_as or None,
            "rule": self.rule.as_metadata() if self.rule else None,
            "reason": self.reason,
        }


def access_check(
    *,
    credential: CompiledCredential,
    method: str,
    path: str,
    target: CompiledTarget | None = None,
    plain_http: bool = False,
    now: datetime | None = None,
) -> AccessDecision:
    """Decide ``METHOD path`` for ``credential`` exactly as the proxy's authentication and scope do.

    ``target``, when known, must be one the credential is bound to; ``plain_http`` says whether the
    path is a plain HTTP target's request path (normalised first) or an MCP virtual route.
    """
    method = method.upper()
    route = f"{method} {path}"
    if credential.revoked:
        return AccessDecision(False, route, None, "credential is revoked")
    expires_at = credential.expires_at
    if expires_at is not None and expires_at <= (now or timezone.now()):
        return AccessDecision(False, route, None, f"credential expired at {expires_at:%Y-%m-%d %H:%M:%S %Z}")
    if target is not None and (
        target.id not in credential.target_ids or target.tenant_id != credential.tenant_id
    ):
        return AccessDecision(False, route, None, f"credential is not allowed to use target {target.slug!r}")
    try:
        judged = f"{method} {route_path_as_proxied(path, plain_http=plain_http)}"
    except InvalidRequest as refusal:
        reason = f"the proxy refuses this path ({refusal.status}): {refusal.message}"
        return AccessDecision(False, route, None, reason, refused=True)
    rule = credential.matching_rule(method, judged.partition(" ")[2])
    if rule is None:
        return AccessDecision(False, route, None, f"no rule allows {judged} (deny by default)", judged)
    return AccessDecision(True, route, rule, f"allowed by rule {rule.id} ({rule.method} {rule.path})", judged)


def route_path_as_proxied(path: str, *, plain_http: bool) -> str:
    """The path the proxy matches allow-rules (and filter routes) on for ``path``.

    A plain HTTP target's request path (``/a/../b?q``) is normalised by the proxy's own function
    (gateway/proxy/paths.py): decoded, dot segments resolved, the query string left out. An MCP
    target's virtual route (``/tools/<name>``) is matched as sent, as the proxy matches it: a tool
    name is not a path. Raises InvalidRequest, with the proxy's message, for a path it refuses.
    """
    if not plain_http:
        return path
    path, _, query = path.partition("?")
    check_query_string(query)
    return normalize_proxy_path(f"/{PROXY_ROOT}/check{path}").subpath or "/"


@transaction.atomic
def filter_create(
    *,
    tenant: Tenant,
    paths: Sequence[str],
    target: Target | None = None,
    credential: Credential | None = None,
    route: str = "",
    mode: str = "enforce",
    order: int | None = None,
) -> Filter:
    """Add a response filter deleting ``paths`` (JSON paths) from results, scoped to the tenant or to one
    of its targets or credentials. Raises ValidationError (the path parser's message) when invalid.

    Saving invalidates every gateway process's compiled policies (policies/invalidation.py).
    """
    if order is None:
        order = Filter.objects.filter(tenant=tenant).count()
    row = Filter(
        tenant=tenant,
        target=target,
        credential=credential,
        route=route.strip(),
        paths=[p.strip() for p in paths],
        mode=mode,
        order=order,
    )
    row.full_clean()
    row.save()
    return row


@transaction.atomic
def redaction_policy_set(
    *,
    tenant: Tenant,
    detectors: Sequence[str],
    action: str,
    target: Target | None = None,
    credential: Credential | None = None,
    route: str = "",
    mode: str = "enforce",
) -> RedactionPolicy:
    """Set the redaction policy of a scope (tenant, or one of its targets or credentials, and route):
    the existing one for the same scope is updated, otherwise one is created. Raises ValidationError
    naming the valid detectors when a name is unknown.
    """
    row = RedactionPolicy.objects.filter(
        tenant=tenant, target=target, credential=credential, route=route.strip()
    ).first() or RedactionPolicy(tenant=tenant, target=target, credential=credential, route=route.strip())
    row.detectors = [d.strip().lower() for d in detectors if d.strip()]
    row.action, row.mode = action, mode
    row.full_clean()
    row.save()
    return row


@transaction.atomic
def filter_delete(*, row: Filter) -> None:
    """Remove a response filter; every gateway process stops applying it within a second."""
    row.delete()


@transaction.atomic
def redaction_policy_delete(*, row: RedactionPolicy) -> None:
    """Remove a redaction policy; every gateway process stops applying it within a second."""
    row.delete()


@dataclass(frozen=True)
class ListingWitness:
    """Who listed the tools when the gateway saw a definition (for the audit event): the call's ids."""

    request_id: str
    credential_id: int | None = None
    credential_name: str = ""
    credential_prefix: str = ""


@transaction.atomic
def tool_definitions_record(
    *, target_id: int, definitions: Sequence[ToolDefinition], witness: ListingWitness
) -> dict[str, str]:
    """Pin the definitions a ``tools/list`` of ``target_id`` served that are new or differ from the
    recorded ones; return each one's state (``approved``, ``pending`` or ``changed``).

    A new tool is approved on first sight unless the target holds new tools or the review
    (policies/tools/review.py) found anything; a definition that differs from the approved one is held
    until an admin approves it, and one that returns to the approved definition is approved again.
    Each new or changed definition is an audit event. Calls for one target are serialised on its row,
    so gateway processes that see the same change at once record it once.
    """
    target = Target.objects.select_for_update().get(pk=target_id)
    names = [definition.name for definition in definitions]
    pins = {pin.name: pin for pin in PinnedTool.objects.filter(target=target, name__in=names)}
    hosts = target.trusted_url_host_list()
    states: dict[str, str] = {}
    events: list[AuditRecord] = []
    now = timezone.now()
    for definition in definitions:
        pin = pins.get(definition.name)
        if pin is not None and pin.served_hash == definition.hash:
            states[definition.name] = pin.state  # another process recorded it first
            continue
        findings = [
            {key: escape_invisible(value) for key, value in finding.as_dict().items()}
            for finding in review_definition(definition, allowed_url_hosts=hosts)
        ]
        previous_hash = pin.served_hash if pin is not None else ""
        pin = _pin_served(pin, target, definition, findings, now)
        states[definition.name] = pin.state
        events.append(_tool_event(target, pin, witness, previous_hash=previous_hash, now=now))
    if events:
        AuditEvent.objects.bulk_create([AuditEvent(**sanitise_record(event)) for event in events])
    return states


def _pin_served(
    pin: PinnedTool | None,
    target: Target,
    definition: ToolDefinition,
    findings: list[dict[str, str]],
    now: datetime,
) -> PinnedTool:
    """Save ``definition`` as the served one, with the state it gets."""
    if pin is None:
        pin = PinnedTool(target=target, name=definition.name, first_seen_at=now)
        approve = not target.hold_new_tools and not findings
        pin.state = PinnedTool.State.APPROVED if approve else PinnedTool.State.PENDING
        if approve:
            pin.approved_definition, pin.approved_hash = definition.canonical, definition.hash
            pin.approved_at, pin.approved_by = now, "first sight (target approves new tools)"
    elif definition.hash == pin.approved_hash:
        pin.state = PinnedTool.State.APPROVED  # the upstream went back to the approved definition
    else:
        pin.state = PinnedTool.State.CHANGED if pin.approved_hash else PinnedTool.State.PENDING
    pin.served_definition, pin.served_hash = definition.canonical, definition.hash
    pin.findings, pin.changed_at = findings, now
    pin.save()
    return pin


def _tool_event(
    target: Target, pin: PinnedTool, witness: ListingWitness, *, previous_hash: str, now: datetime
) -> AuditRecord:
    new = not previous_hash
    if pin.state == PinnedTool.State.APPROVED:
        verdict = "approved on first sight" if new else "back to the approved definition"
    else:
        verdict = "held for approval" + (f" ({len(pin.findings)} findings)" if pin.findings else "")
    what = "new tool" if new else "tool definition changed"
    return _tool_record(
        target,
        pin,
        kind=AuditEvent.Kind.TOOL_NEW if new else AuditEvent.Kind.TOOL_CHANGED,
        reason=f"{what} {pin.name!r}: {verdict}",
        created_at=now,
        request_id=witness.request_id,
        credential_id=witness.credential_id,
        credential_name=witness.credential_name,
        credential_prefix=witness.credential_prefix,
        jsonrpc_method="tools/list",
        decision="allowed" if pin.state == PinnedTool.State.APPROVED else "denied",
        details={
            "state": pin.state,
            "served_hash": pin.served_hash,
            "previous_hash": previous_hash,
            "approved_hash": pin.approved_hash,
            "findings": pin.findings,
        },
    )


def _tool_record(target: Target, pin: PinnedTool, *, kind: str, reason: str, **columns: Any) -> AuditRecord:
    """An audit record about ``pin``, a tool of ``target``, routed as a call of it would be."""
    return event_record(
        kind=kind,
        reason=reason,
        tenant_id=target.tenant_id,
        target_id=target.id,
        target_slug=target.slug,
        http_method="POST",
        path=f"/mcp/{target.slug}/",
        route=f"POST /tools/{pin.name}",
        tool=pin.name,
        **columns,
    )


@transaction.atomic
def tool_approve(*, pin: PinnedTool, actor: str, served_hash: str | None = None) -> PinnedTool:
    """Approve the definition ``pin``'s target now serves, so agents see and may call it again.

    ``served_hash`` is the definition the approver reviewed: when the upstream has served another one
    since, nothing is approved (ValidationError), so an admin never approves a definition unseen.
    The approval is an audit event, and a change-log entry by ``actor``; every gateway process reloads
    the tool at once.
    """
    pin = PinnedTool.objects.select_for_update().select_related("target").get(pk=pin.pk)
    if served_hash is not None and served_hash != pin.served_hash:
        raise ValidationError(
            f"Tool {pin.name!r} changed again since it was reviewed (reviewed {served_hash[:12]}, now served "
            f"{pin.served_hash[:12]}): review the new definition."
        )
    previous = pin.approved_hash
    before = snapshot(pin)
    now = timezone.now()
    pin.approved_definition, pin.approved_hash = pin.served_definition, pin.served_hash
    pin.state, pin.approved_at, pin.approved_by = PinnedTool.State.APPROVED, now, actor[:200]
    pin.save()
    target = pin.target
    event = _tool_record(
        target,
        pin,
        kind=AuditEvent.Kind.TOOL_APPROVED,
        reason=f"tool {pin.name!r} approved by {actor}"[:500],
        created_at=now,
        details={"approved_hash": pin.approved_hash, "previous_hash": previous, "findings": pin.findings},
    )
    AuditEvent.objects.create(**sanitise_record(event))
    scope = (target.tenant_id, target.id, None)
    record_change(instance=pin, before=before, after=snapshot(pin), actor=actor, scope=scope)
    return pin


#: The fields of a filter or redaction policy's scope that an update may change.
SCOPE_FIELDS = ("target", "credential", "route", "mode", "order")


@transaction.atomic
def filter_update(*, row: Filter, data: dict[str, Any]) -> Filter:
    """Change a response filter (``paths`` and the scope fields); validated as filter_create validates.
    Every gateway process reloads its compiled policies."""
    values = dict(data)
    if "paths" in values:
        values["paths"] = [str(p).strip() for p in values["paths"]]
    if "route" in values:
        values["route"] = str(values["route"]).strip()
    model_update(instance=row, fields=("paths", *SCOPE_FIELDS), data=values)
    return row


@transaction.atomic
def redaction_policy_update(*, row: RedactionPolicy, data: dict[str, Any]) -> RedactionPolicy:
    """Change a redaction policy (``detectors``, ``action`` and the scope fields)."""
    values = dict(data)
    if "detectors" in values:
        values["detectors"] = [str(d).strip().lower() for d in values["detectors"] if str(d).strip()]
    if "route" in values:
        values["route"] = str(values["route"]).strip()
    model_update(instance=row, fields=("detectors", "action", *SCOPE_FIELDS), data=values)
    return row
