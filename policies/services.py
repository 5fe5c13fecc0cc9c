"""Policy writes (response filters, redaction policies) and policy simulation: what may this credential
call, and why?"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from gateway.models import Credential, Target, Tenant
from gateway.proxy.errors import InvalidRequest
from gateway.proxy.paths import PROXY_ROOT, check_query_string, normalize_proxy_path
from policies.compiler import CompiledCredential, CompiledRule, CompiledTarget
from policies.models import Filter, RedactionPolicy


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
