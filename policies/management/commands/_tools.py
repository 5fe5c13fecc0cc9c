"""What ``list_tools`` and ``approve_tool`` share: finding a target's pins and describing one.

Names, excerpts and diff lines are printed with invisible characters escaped (``\\U000e0041``), so a
hostile definition cannot hide text in, or take over, the operator's terminal.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError

from gateway.models import Target
from policies.models import PinnedTool
from policies.tools import ToolDefinitionError, definition_diff, escape_invisible


def pin_by_name(target: Target, name: str) -> PinnedTool:
    pin = PinnedTool.objects.filter(target=target, name=name).select_related("target").first()
    if pin is None:
        known = list(PinnedTool.objects.filter(target=target).values_list("name", flat=True)[:20])
        pinned = ", ".join(escape_invisible(n) for n in known) if known else "none yet"
        raise CommandError(f"Target {target.slug!r} has no pinned tool named {name!r} (pinned: {pinned}).")
    return pin


def pin_as_json(pin: PinnedTool) -> dict[str, Any]:
    return {
        "name": pin.name,
        "state": pin.state,
        "served_hash": pin.served_hash,
        "approved_hash": pin.approved_hash,
        "first_seen_at": pin.first_seen_at,
        "changed_at": pin.changed_at,
        "approved_at": pin.approved_at,
        "approved_by": pin.approved_by,
        "findings": pin.findings,
    }


def pin_as_text(pin: PinnedTool) -> str:
    """One line for the tool, then one indented line per finding."""
    approved = f"approved {pin.approved_hash[:12]}" if pin.approved_hash else "never approved"
    line = (
        f"{escape_invisible(pin.name)}  {pin.state}  served {pin.served_hash[:12]}  {approved}  "
        f"changed {pin.changed_at:%Y-%m-%d %H:%M:%S %Z}"
    )
    findings = [
        "    "
        + escape_invisible(f"{f.get('kind')} at {f.get('location') or '-'}: {f.get('detail')}")
        + (f"  [{escape_invisible(str(f['excerpt']))}]" if f.get("excerpt") else "")
        for f in pin.findings or []
        if isinstance(f, dict)
    ]
    return "\n".join([line, *findings])


def pin_diff(pin: PinnedTool) -> list[str]:
    """The diff from the approved definition to the served one (escaped); [] for a new or unchanged tool."""
    if pin.approved_definition is None or pin.approved_hash == pin.served_hash:
        return []
    try:
        approved, served = pin.approved_tool(), pin.served_tool()
    except ToolDefinitionError as error:
        return [f"(no diff: {escape_invisible(str(error))})"]
    if approved is None:
        return []
    return [escape_invisible(line) for line in definition_diff(approved, served)]
