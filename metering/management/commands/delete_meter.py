"""``manage.py delete_meter ID [--json]``: remove a meter (``12`` or ``m12``); calls are no longer
counted or refused by it. Its audit events stay."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from gateway.management.commands._cli import GatewayCommand, service_errors
from metering.management.commands._meters import meter_as_json, meter_by_id, meter_line
from metering.services import meter_delete


class Command(GatewayCommand):
    """Delete a meter by id."""

    help = "Delete a meter (by id, 12 or m12)."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("id", help="Id of the meter: 12 or m12.")

    def handle(self, *args: Any, **options: Any) -> None:
        meter = meter_by_id(options["id"])
        data, line = {**meter_as_json(meter), "deleted": True}, meter_line(meter)
        with service_errors():
            meter_delete(meter=meter)
        self.emit(options, data, f"Deleted meter {line}.")
