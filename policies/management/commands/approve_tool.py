"""``manage.py approve_tool``: approve the definition a target now serves for one tool.

Agents see and may call the tool again at once. With ``--hash`` (the served hash ``list_tools``
printed) nothing is approved if the upstream has served another definition since: approve what you
reviewed, not what arrived after. The approval is an audit event naming ``cli:<os user>``.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from gateway.management.commands._cli import GatewayCommand, cli_actor, service_errors, target_by_slug
from policies.management.commands._tools import pin_as_json, pin_by_name, pin_diff
from policies.models import PinnedTool
from policies.services import tool_approve
from policies.tools import escape_invisible


class Command(GatewayCommand):
    """Approve one pinned tool's served definition and print what was approved and what it replaced."""

    help = "Approve the definition a target now serves for a tool, so agents may see and call it."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--target", required=True, metavar="SLUG", help="Slug of the target.")
        parser.add_argument("--tool", required=True, metavar="NAME", help="Name of the tool.")
        parser.add_argument(
            "--hash",
            metavar="SERVED_HASH",
            help="The served hash you reviewed (list_tools); refused if the served definition differs.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        pin = pin_by_name(target_by_slug(options["target"]), options["tool"])
        reviewed = options["hash"].strip().lower() if options["hash"] else None
        name = escape_invisible(pin.name)
        if pin.state == PinnedTool.State.APPROVED and reviewed in (None, pin.served_hash):
            text = (
                f"Tool '{name}' of target {pin.target.slug!r} is already approved ({pin.served_hash[:12]})."
            )
            self.emit(options, {**pin_as_json(pin), "already_approved": True, "previous_hash": ""}, text)
            return
        diff = pin_diff(pin)
        previous = pin.approved_hash
        with service_errors():
            pin = tool_approve(pin=pin, actor=cli_actor(), served_hash=reviewed)
        was = f"replacing {previous[:12]}" if previous else "first approval"
        text = "\n".join(
            [
                f"Approved tool '{name}' of target {pin.target.slug!r}: {pin.approved_hash[:12]} ({was}), "
                f"by {pin.approved_by}.",
                *diff,
            ]
        )
        data = {**pin_as_json(pin), "already_approved": False, "previous_hash": previous, "diff": diff}
        self.emit(options, data, text)
