"""``manage.py list_meters [--tenant T] [--target SLUG] [--credential ID] [--json]``: the meters and
their current use in this window."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from gateway.management.commands._cli import GatewayCommand, listing_filters
from metering.management.commands._meters import meters_in_use, usage_json
from metering.selectors import meter_list


class Command(GatewayCommand):
    """List meters in id order, each with its use in the current window."""

    help = "List meters with their current use (read from Redis; not readable on the embedded default)."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--tenant", metavar="NAME", help="Only this tenant's meters.")
        parser.add_argument("--target", metavar="SLUG", help="Only the meters scoped to this target.")
        parser.add_argument("--credential", metavar="ID", help="Only the meters scoped to this credential.")

    def handle(self, *args: Any, **options: Any) -> None:
        meters = list(meter_list(**listing_filters(options)))
        usages = meters_in_use(meters)
        data = {"meters": [usage_json(m, u) for m, u in zip(meters, usages, strict=True)]}
        self.emit(options, data, "\n".join(u.as_line() for u in usages) or "No meter.")
