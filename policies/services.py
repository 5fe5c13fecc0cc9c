"""Policy simulation: what may this credential call, and why?"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from policies.compiler import CompiledCredential, CompiledRule


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
