"""``manage.py check_access --credential ID 'POST /tools/search' ...``: would this call be allowed?

Decides each route exactly as the proxy does (deny by default, first matching rule in order) and
names the rule that decided it. A revoked or expired credential is refused whatever its rules say.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from gateway.management.commands._cli import GatewayCommand, credential_by_id, parse_route
from gateway.models import Credential
from metering.runtime import admin_limiter
from metering.selectors import meter_usage_for_credential
from policies.selectors import compile_credential
from policies.services import AccessDecision, access_check


class Command(GatewayCommand):
    """Print the access decision, and the deciding rule, for one or more routes."""

    help = "Check which routes a credential may call, and which rule decides."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--credential", required=True, metavar="ID", help="Id of the credential.")
        parser.add_argument("routes", nargs="+", metavar="'METHOD /path'", help="e.g. 'POST /tools/search'.")

    def handle(self, *args: Any, **options: Any) -> None:
        routes = [parse_route(value, option="A route") for value in options["routes"]]
        credential = credential_by_id(options["credential"])
        compiled = compile_credential(credential)
        decisions = [access_check(credential=compiled, method=method, path=path) for method, path in routes]
        data = {
            "credential": {
                "id": credential.id,
                "name": credential.name,
                "tenant": credential.tenant.name,
                "status": credential.status,
                "expires_at": credential.expires_at,
                "revoked_at": credential.revoked_at,
            },
            "decisions": [decision.as_dict() for decision in decisions],
        }
        limiter = admin_limiter(in_gateway_process=False)
        meters = meter_usage_for_credential(credential=credential, routes=routes, limiter=limiter)
        data["meters"] = [usage.as_dict() for usage in meters]
        lines = [status_line(credential), *(decision_line(decision) for decision in decisions)]
        lines += [usage.as_line() for usage in meters]
        self.emit(options, data, "\n".join(lines))


def status_line(credential: Credential) -> str:
    who = f"Credential {credential.id} {credential.name!r} (tenant {credential.tenant.name!r})"
    if credential.revoked_at is not None:
        return f"{who} is revoked since {credential.revoked_at:%Y-%m-%d %H:%M:%S %Z}: every call is refused."
    if credential.status == "expired":
        return f"{who} expired at {credential.expires_at:%Y-%m-%d %H:%M:%S %Z}: every call is refused."
    return f"{who} is active."


def decision_line(decision: AccessDecision) -> str:
    verdict = "allowed" if decision.allowed else "denied "
    if decision.rule is None:
        return f"{verdict}  {decision.route}  - {decision.reason}"
    rule = decision.rule
    described = f" {rule.description!r}" if rule.description else ""
    return f"{verdict}  {decision.route}  - by rule {rule.id}: {rule.method} {rule.path}{described}"
