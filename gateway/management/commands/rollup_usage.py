"""``manage.py rollup_usage``: recompute the hourly and daily usage rollups now.

What the Celery beat task does every minute; ``--since`` also recomputes every hour from a date.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from gateway.management.commands._cli import GatewayCommand, parse_moment
from metering.services import usage_rollup_run


class Command(GatewayCommand):
    """Run the usage rollup once and print what it recomputed."""

    help = "Aggregate audit events into hourly and daily usage rollups (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--since", metavar="YYYY-MM-DD[THH:MM]", help="Also recompute every hour since (UTC)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        since = parse_moment(options["since"], option="--since") if options["since"] else None
        report = usage_rollup_run(since=since)
        text = (
            f"Recomputed {report.hours} hour(s) and {report.days} day(s): {report.rows} rollup row(s); "
            f"audit events up to id {report.last_event_id} taken into account."
        )
        self.emit(options, report.as_dict(), text)
