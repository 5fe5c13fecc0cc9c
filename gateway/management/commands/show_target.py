"""``manage.py show_target SLUG [--json]``: a target's settings, the credentials bound to it, its
pinned tools by state and how many meters apply to it. The upstream secret is never shown."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser
from django.db.models import Count

from gateway.management.commands._cli import GatewayCommand, target_by_slug
from gateway.management.commands.create_target import describe, describe_text
from gateway.selectors import credential_list
from metering.selectors import meter_list
from policies.models import PinnedTool


class Command(GatewayCommand):
    """Show one target."""

    help = "Show a target: settings, bound credentials, pinned tools by state, meters."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("slug", help="The target's slug.")

    def handle(self, *args: Any, **options: Any) -> None:
        target = target_by_slug(options["slug"])
        credentials = list(credential_list(target=target))
        states = dict(
            PinnedTool.objects.filter(target=target)
            .order_by()
            .values_list("state")
            .annotate(count=Count("id"))
            .values_list("state", "count")
        )
        tools = {state: states.get(state, 0) for state in PinnedTool.State.values}
        meters = meter_list(target=target).count()
        data = {
            **describe(target),
            "credentials": [{"id": c.id, "name": c.name, "status": c.status} for c in credentials],
            "tools": tools,
            "meters": meters,
        }
        bound = ", ".join(f"{c.id} {c.name!r} ({c.status})" for c in credentials) or "none"
        text = describe_text(target).replace("Created target", "Target", 1)
        held = tools["pending"] + tools["changed"]
        text += (
            f"\nCredentials: {bound}\nPinned tools: {tools['approved']} approved, {held} held for approval"
            f"\nMeters scoped to it: {meters}"
        )
        self.emit(options, data, text)
