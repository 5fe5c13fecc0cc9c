"""``check_access`` with no route: every tool and route a credential may reach, target by target, and
why: the rule that allows each tool (or none), whether the tool is held for approval, the meters that
count it, and the filters and redaction policies applied to what it returns.

Tools are the ones the gateway pinned when an agent listed them (an MCP target the gateway has not
seen listed has none yet); the routes are the credential's rules, first match deciding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.proxy.jsonrpc import Route
from metering.compiler import CompiledMeter
from metering.limiter import LimiterAdmin
from metering.selectors import MeterUsage, compiled_meters_for_call, meter_usage_list
from policies.compiler import CompiledCredential, CompiledTarget, CompiledTool
from policies.selectors import RouteProtections, route_protections_get, target_protections_get
from policies.services import access_check
from policies.tools import escape_invisible


@dataclass(frozen=True)
class ToolReach:
    """One pinned tool of a target, as this credential would meet it."""

    name: str
    decision: str  # allowed, denied or held
    reason: str
    rule: dict[str, object] | None
    meters: tuple[str, ...]
    protections: RouteProtections | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "tool": self.name,
            "route": f"POST /tools/{self.name}",
            "decision": self.decision,
            "reason": self.reason,
            "rule": self.rule,
            "meters": list(self.meters),
            "protections": self.protections.as_dict() if self.protections else None,
        }

    def as_lines(self) -> list[str]:
        head = f"{self.decision:<8} {escape_invisible(self.name)}  - {self.reason}"
        lines = [head]
        if self.meters:
            lines.append(f"    counted by {', '.join(self.meters)}")
        lines += [f"    {line}" for line in (self.protections.as_lines() if self.protections else [])]
        return lines


@dataclass(frozen=True)
class TargetReach:
    """What the credential may reach on one target."""

    target: CompiledTarget
    tools: tuple[ToolReach, ...]
    meters: tuple[MeterUsage, ...]
    protections: RouteProtections
    rules: tuple[dict[str, object], ...] = field(default=())

    @property
    def reachable(self) -> bool:
        return bool(self.rules) and (
            not self.target.is_mcp or not self.target.tools or self.allowed_tools > 0
        )

    @property
    def allowed_tools(self) -> int:
        return sum(1 for tool in self.tools if tool.decision == "allowed")

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target.slug,
            "kind": self.target.kind,
            "rules": list(self.rules),
            "tools": [tool.as_dict() for tool in self.tools],
            "meters": [usage.as_dict() for usage in self.meters],
            "protections": self.protections.as_dict(),
        }

    def as_lines(self) -> list[str]:
        kind = "MCP" if self.target.is_mcp else "plain HTTP"
        lines = [f"Target {self.target.slug!r} ({kind}):"]
        if self.target.is_mcp:
            lines.append(f"  tools ({self.allowed_tools} of {len(self.tools)} callable):")
            if not self.tools:
                lines.append("    none pinned yet: tools appear once an agent lists them (tools/list)")
            lines += [f"    {line}" for tool in self.tools for line in tool.as_lines()]
        lines.append("  routes the rules allow (first match decides; anything else is denied):")
        lines += [f"    {rule['method']} {rule['path']}  (rule {rule['id']})" for rule in self.rules] or [
            "    none: every call is denied"
        ]
        lines.append("  meters a call here meets:")
        lines += [f"    {usage.as_line()}" for usage in self.meters] or ["    none"]
        lines.append("  filters and redaction on what it returns:")
        lines += [f"    {line}" for line in self.protections.as_lines()]
        return lines


def target_reach(
    *, credential: CompiledCredential, target: CompiledTarget, limiter: LimiterAdmin | None
) -> TargetReach:
    """Everything ``credential`` may reach on ``target``, with the reasons."""
    compiled_meters = compiled_meters_for_call(
        tenant_id=credential.tenant_id, target_id=target.id, credential_id=credential.id
    )
    tools = tuple(
        _tool_reach(credential, target, target.tools[name], compiled_meters) for name in sorted(target.tools)
    )
    return TargetReach(
        target=target,
        tools=tools,
        meters=tuple(meter_usage_list(compiled_meters, limiter=limiter)),
        protections=target_protections_get(credential=credential, target=target),
        rules=tuple(rule.as_metadata() for rule in credential.rules),
    )


def _tool_reach(
    credential: CompiledCredential,
    target: CompiledTarget,
    tool: CompiledTool,
    meters: tuple[CompiledMeter, ...],
) -> ToolReach:
    path = f"/tools/{tool.name}"
    decision = access_check(credential=credential, method="POST", path=path, target=target)
    rule = decision.rule.as_metadata() if decision.rule else None
    if not decision.allowed:
        return ToolReach(tool.name, "denied", decision.reason, rule, (), None)
    if not tool.callable:
        held = "new" if tool.state == "pending" else "changed"
        reason = f"held for approval ({held} definition): agents neither see nor call it until approved"
        return ToolReach(tool.name, "held", reason, rule, (), None)
    route = Route("POST", path)
    counting = tuple(meter.name for meter in meters if meter.counts(route))
    shown = route_protections_get(credential=credential, target=target, method="POST", path=path)
    return ToolReach(tool.name, "allowed", decision.reason, rule, counting, shown)
