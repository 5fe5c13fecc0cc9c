"""``manage.py rollup_usage``: recompute the hourly and daily usage rollups now.

What the Celery beat task does every minute; ``--since`` also recomputes every hour from a date.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.core.management.base import CommandError, CommandParser

from gateway.management.commands._cli import GatewayCommand
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
        since = parse_since(options["since"]) if options["since"] else None
        report = usage_rollup_run(since=since)
        text = (
            f"Recomputed {report.hours} hour(s) and {report.days} day(s): {report.rows} rollup row(s); "
            f"audit events up to id {report.last_event_id} taken into account."
        )
        self.emit(options, report.as_dict(), text)


def parse_since(value: str, *, option: str = "--since") -> datetime:
    """A date or time typed by an operator, in UTC unless it names its zone."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(
            f"{option} must be a date or time such as 2026-01-31 or 2026-01-31T12:00; got {value!r}"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
