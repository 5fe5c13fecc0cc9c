"""Policy writes (response filters, redaction policies) and policy simulation: what may this credential
call, and why?"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from gateway.models import Credential, Target, Tenant
from policies.compiler import CompiledCredential, CompiledRule
from policies.models import Filter, RedactionPolicy


@dataclass(frozen=True)
class AccessDecision:
    """The outcome of checking one route against one credential's rules."""

    allowed: bool
    route: str
    rule: CompiledRule | None
    reason: str

    def as_dict(self) -> dict[str, object]:
        return {
            "decision": "allowed" if self.allowed else "denied",
            "route": self.route,
            "rule": self.rule.as_metadata() if self.rule else None,
            "reason": self.reason,
        }


def access_check(
    *, credential: CompiledCredential, method: str, path: str, now: datetime | None = None
) -> AccessDecision:
    """Decide ``METHOD path`` for ``credential`` exactly as the proxy's authentication and scope do."""
    method = method.upper()
    route = f"{method} {path}"
    if credential.revoked:
        return AccessDecision(False, route, None, "credential is revoked")
    expires_at = credential.expires_at
    if expires_at is not None and expires_at <= (now or timezone.now()):
        return AccessDecision(False, route, None, f"credential expired at {expires_at:%Y-%m-%d %H:%M:%S %Z}")
    rule = credential.matching_rule(method, path)
    if rule is None:
        return AccessDecision(False, route, None, f"no rule allows {route} (deny by default)")
    return AccessDecision(True, route, rule, f"allowed by rule {rule.id} ({rule.method} {rule.path})")


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
