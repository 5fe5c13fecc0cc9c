"""``manage.py update_meter ID [--limit N] [--window W] [--route R] [--value-path P ...] [--fail-mode M]
[--description D] [--json]``: change a meter; what is not given stays. Its scope and kind stay (delete
it and create another to change them); the counts of the current window are kept."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from gateway.management.commands._cli import GatewayCommand, service_errors
from metering.management.commands._meters import meter_as_json, meter_by_id, meter_line
from metering.models import Meter
from metering.services import meter_update

CHANGES = ("limit", "window", "route", "value_path", "fail_mode", "description")


class Command(GatewayCommand):
    """Update a meter and print it as it now is."""

    help = "Change a meter's limit, window, route, value paths, fail mode or description."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("id", help="Id of the meter: 12 or m12.")
        parser.add_argument("--limit", type=float, help="Calls, or the sum of the values, per window.")
        parser.add_argument("--window", choices=Meter.Window.values)
        parser.add_argument("--route", metavar="'METHOD /glob'", help="'' counts every call again.")
        parser.add_argument(
            "--value-path", action="append", metavar="PATH", help="Replace the JSON paths (repeatable)."
        )
        parser.add_argument("--fail-mode", choices=Meter.FailMode.values)
        parser.add_argument("--description")

    def handle(self, *args: Any, **options: Any) -> None:
        if all(options[name] is None for name in CHANGES):
            flags = ", ".join(f"--{name.replace('_', '-')}" for name in CHANGES)
            raise CommandError(f"Nothing to change: give at least one of {flags}.")
        meter = meter_by_id(options["id"])
        with service_errors():
            given = {
                "limit": options["limit"],
                "window": options["window"],
                "route": options["route"],
                "value_paths": options["value_path"],
                "fail_mode": options["fail_mode"],
                "description": options["description"],
            }
            meter = meter_update(
                meter=meter, data={key: value for key, value in given.items() if value is not None}
            )
        self.emit(
            options, meter_as_json(meter), f"Updated meter {meter_line(meter)}, fails {meter.fail_mode}."
        )
