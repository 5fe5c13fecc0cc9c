"""``manage.py check_access --credential ID 'POST /tools/search' ... [--target SLUG]``: would this call
be allowed, and what would the agent's context be protected by?

Decides each route exactly as the proxy does (deny by default, first matching rule in order) and
names the rule that decided it. A revoked or expired credential is refused whatever its rules say.
A plain HTTP target's path is normalised as the proxy normalises it (``/a/../b`` is ``/b``), and a
path the proxy refuses is reported as refused with the proxy's reason; an MCP target's virtual route
is matched as sent. Under each allowed route it lists the response filters and redaction policies
the proxy's ``select_for_call`` picks, in stack order, for ``--target`` or the credential's only
target; otherwise the target-independent ones, counting those that depend on the target.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from gateway.management.commands._cli import GatewayCommand, credential_by_id, parse_route, target_by_slug
from gateway.models import Credential, Target
from metering.runtime import admin_limiter
from metering.selectors import meter_usage_for_credential
from policies.compiler import CompiledTarget
from policies.selectors import compile_credential, compile_target, route_protections_get
from policies.services import AccessDecision, access_check


class Command(GatewayCommand):
    """Print the access decision, and the deciding rule, for one or more routes."""

    help = "Check which routes a credential may call, and which rule decides."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--credential", required=True, metavar="ID", help="Id of the credential.")
        parser.add_argument(
            "--target", metavar="SLUG", help="The target called (default: the credential's only target)."
        )
        parser.add_argument("routes", nargs="+", metavar="'METHOD /path'", help="e.g. 'POST /tools/search'.")

    def handle(self, *args: Any, **options: Any) -> None:
        routes = [parse_route(value, option="A route") for value in options["routes"]]
        credential = credential_by_id(options["credential"])
        compiled = compile_credential(credential)
        target, plain_http = _target_judged(credential, options["target"])
        decisions = [
            access_check(credential=compiled, method=method, path=path, target=target, plain_http=plain_http)
            for method, path in routes
        ]
        protections = [
            route_protections_get(
                credential=compiled, target=target, method=method, path=decision.judged_as.partition(" ")[2]
            )
            if decision.allowed
            else None
            for decision, (method, _) in zip(decisions, routes, strict=True)
        ]
        data = {
            "credential": {
                "id": credential.id,
                "name": credential.name,
                "kind": credential.kind,
                "tenant": credential.tenant.name,
                "status": credential.status,
                "expires_at": credential.expires_at,
                "revoked_at": credential.revoked_at,
            },
            "target": target.slug if target else None,
            "judged_as": "plain HTTP paths" if plain_http else "MCP virtual routes",
            "decisions": [
                {**decision.as_dict(), "protections": shown.as_dict() if shown else None}
                for decision, shown in zip(decisions, protections, strict=True)
            ],
        }
        limiter = admin_limiter(in_gateway_process=False)
        # Meters match the route as the proxy judges it too; a refused path reaches no meter.
        judged = [
            (method, decision.judged_as.partition(" ")[2] or path)
            for decision, (method, path) in zip(decisions, routes, strict=True)
            if not decision.refused
        ]
        meters = meter_usage_for_credential(credential=credential, routes=judged, limiter=limiter)
        data["meters"] = [usage.as_dict() for usage in meters]
        lines = [status_line(credential), target_line(target, plain_http)]
        for decision, shown in zip(decisions, protections, strict=True):
            lines.append(decision_line(decision))
            lines += [f"    {line}" for line in (shown.as_lines() if shown else [])]
        lines += [usage.as_line() for usage in meters]
        self.emit(options, data, "\n".join(lines))


def status_line(credential: Credential) -> str:
    who = f"Credential {credential.id} {credential.name!r} (tenant {credential.tenant.name!r})"
    if credential.revoked_at is not None:
        return f"{who} is revoked since {credential.revoked_at:%Y-%m-%d %H:%M:%S %Z}: every call is refused."
    if credential.status == "expired":
        return f"{who} expired at {credential.expires_at:%Y-%m-%d %H:%M:%S %Z}: every call is refused."
    return f"{who} is active."


def _target_judged(credential: Credential, slug: str | None) -> tuple[CompiledTarget | None, bool]:
    """The target the routes are checked for (``--target``, else the credential's only one), and
    whether its paths are plain HTTP paths. With no single target, paths are plain HTTP only when
    every target of the credential is a plain HTTP one."""
    if slug:
        row = target_by_slug(slug)
        return compile_target(row), row.kind != Target.Kind.MCP
    targets = list(credential.targets.all())
    if len(targets) == 1:
        return compile_target(targets[0]), targets[0].kind != Target.Kind.MCP
    return None, bool(targets) and all(t.kind != Target.Kind.MCP for t in targets)


def target_line(target: CompiledTarget | None, plain_http: bool) -> str:
    kind = "plain HTTP paths (normalised as the proxy does)" if plain_http else "MCP virtual routes"
    if target is None:
        return f"No single target: routes judged as {kind}; protections shown are those of every target."
    return f"Target {target.slug!r}: routes judged as {kind}."


def decision_line(decision: AccessDecision) -> str:
    verdict = "refused" if decision.refused else "allowed" if decision.allowed else "denied "
    route = decision.route
    if decision.judged_as and decision.judged_as != route:
        route = f"{route} (judged as {decision.judged_as})"
    if decision.rule is None:
        return f"{verdict}  {route}  - {decision.reason}"
    rule = decision.rule
    described = f" {rule.description!r}" if rule.description else ""
    return f"{verdict}  {route}  - by rule {rule.id}: {rule.method} {rule.path}{described}"
