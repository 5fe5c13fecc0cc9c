"""``manage.py check_access --credential ID ['POST /tools/search' ...] [--target SLUG]``: would this
call be allowed, and what would the agent's context be protected by? With no route: what may this
credential reach at all, and why (gateway/management/commands/_reach.py)?

Exit status 3 when a route asked about is denied or refused, or, with no route, when the credential
reaches nothing (revoked, expired, no target or no rule); 1 for bad input, as every command.

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

from django.core.management.base import CommandError, CommandParser

from gateway.management.commands._cli import GatewayCommand, credential_by_id, parse_route, target_by_slug
from gateway.management.commands._reach import target_reach
from gateway.models import Credential, Target
from metering.runtime import admin_limiter
from metering.selectors import meter_usage_for_credential
from policies.compiler import CompiledCredential, CompiledTarget
from policies.selectors import compile_credential, compile_target, route_protections_get
from policies.services import AccessDecision, access_check

DENIED = 3


class AccessDenied(CommandError):
    """The access asked about is denied: the report is printed, the exit status says so."""

    def __init__(self, message: str) -> None:
        super().__init__(message, returncode=DENIED)


class Command(GatewayCommand):
    """Print the access decision, and the deciding rule, for one or more routes; with none, every tool
    and route the credential may reach."""

    help = (
        "Check which routes a credential may call and which rule decides; with no route, list everything "
        f"it may reach and why. Exit status {DENIED} when denied."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--credential", required=True, metavar="ID", help="Id of the credential.")
        parser.add_argument(
            "--target", metavar="SLUG", help="The target called (default: the credential's only target)."
        )
        parser.add_argument(
            "routes",
            nargs="*",
            metavar="'METHOD /path'",
            help="e.g. 'POST /tools/search'; none: list every tool and route the credential may reach.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        routes = [parse_route(value, option="A route") for value in options["routes"]]
        credential = credential_by_id(options["credential"])
        compiled = compile_credential(credential)
        if not routes:
            self._report_reach(options, credential, compiled)
            return
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
            "credential": credential_shown(credential),
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
        denied = [decision.route for decision in decisions if not decision.allowed]
        if denied:
            raise AccessDenied(f"access denied: {', '.join(denied)}")

    def _report_reach(
        self, options: dict[str, Any], credential: Credential, compiled: CompiledCredential
    ) -> None:
        rows = [target_by_slug(options["target"])] if options["target"] else list(credential.targets.all())
        limiter = admin_limiter(in_gateway_process=False)
        reaches = [
            target_reach(credential=compiled, target=compile_target(row), limiter=limiter) for row in rows
        ]
        active = credential.status == "active"
        bound = [reach for reach in reaches if reach.target.id in compiled.target_ids]
        data = {
            "credential": credential_shown(credential),
            "reaches_anything": active and any(reach.reachable for reach in bound),
            "targets": [
                {**reach.as_dict(), "bound": reach.target.id in compiled.target_ids} for reach in reaches
            ],
        }
        lines = [status_line(credential)]
        if not rows:
            lines.append("It is bound to no target: every call is refused.")
        for reach in reaches:
            if reach.target.id not in compiled.target_ids:
                lines.append(
                    f"Target {reach.target.slug!r}: the credential is not bound to it: every call is refused."
                )
                continue
            lines += reach.as_lines()
        self.emit(options, data, "\n".join(lines))
        if not data["reaches_anything"]:
            raise AccessDenied(f"credential {credential.id} reaches nothing")


def credential_shown(credential: Credential) -> dict[str, Any]:
    return {
        "id": credential.id,
        "name": credential.name,
        "kind": credential.kind,
        "tenant": credential.tenant.name,
        "status": credential.status,
        "expires_at": credential.expires_at,
        "revoked_at": credential.revoked_at,
    }


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
