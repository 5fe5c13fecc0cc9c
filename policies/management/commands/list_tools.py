"""``manage.py list_tools``: the tool definitions pinned for a target, their state and findings.

A held tool (``pending``: new, or ``changed``) is hidden from agents and its calls refused until it is
approved with ``approve_tool`` or in the admin; ``--diff`` shows what changed since the approved one.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from gateway.management.commands._cli import GatewayCommand, target_by_slug
from policies.management.commands._tools import pin_as_json, pin_as_text, pin_diff
from policies.models import PinnedTool


class Command(GatewayCommand):
    """List a target's pinned tools, one line each with their findings indented below."""

    help = "List the tool definitions pinned for a target, their state and why they are held."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--target", required=True, metavar="SLUG", help="Slug of the target.")
        parser.add_argument("--state", choices=PinnedTool.State.values, help="Only tools in this state.")
        parser.add_argument(
            "--diff", action="store_true", help="Add each changed tool's diff from its approved definition."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        target = target_by_slug(options["target"])
        pins = PinnedTool.objects.filter(target=target).order_by("name")
        if options["state"]:
            pins = pins.filter(state=options["state"])
        tools, lines = [], []
        for pin in pins:
            diff = pin_diff(pin) if options["diff"] else []
            tools.append({**pin_as_json(pin), **({"diff": diff} if options["diff"] else {})})
            lines.append(pin_as_text(pin))
            lines.extend("    " + line for line in diff)
        held = sum(1 for tool in tools if tool["state"] != PinnedTool.State.APPROVED)
        which = f" {options['state']}" if options["state"] else ""
        header = f"Target {target.slug!r}: {len(tools)}{which} pinned tool(s), {held} held for approval."
        self.emit(options, {"target": target.slug, "tools": tools}, "\n".join([header, *lines]))
