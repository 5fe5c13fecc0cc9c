"""``manage.py show_meter ID [--json]``: one meter (``12`` or ``m12``) and its current use."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from gateway.management.commands._cli import GatewayCommand
from metering.management.commands._meters import meter_by_id, meters_in_use, usage_json


class Command(GatewayCommand):
    """Show one meter with its use in the current window."""

    help = "Show a meter (by id, 12 or m12) and its current use."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("id", help="Id of the meter: 12 or m12.")

    def handle(self, *args: Any, **options: Any) -> None:
        meter = meter_by_id(options["id"])
        [usage] = meters_in_use([meter])
        described = f"\nDescription: {meter.description}" if meter.description else ""
        text = f"{usage.as_line()}{described}\nTenant: {meter.tenant.name}"
        self.emit(options, usage_json(meter, usage), text)
