"""``manage.py create_meter``: attach a meter to a credential, a target or a whole tenant.

The scope is the credential if ``--credential`` is given (with ``--target`` too, only its calls on
that target), else the target if ``--target`` is given, else the tenant.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from gateway.management.commands._cli import GatewayCommand, scope_from, service_errors
from metering.models import Meter
from metering.services import meter_create


class Command(GatewayCommand):
    """Create a meter and print it."""

    help = "Create a meter: a limit on calls, or on values read from responses, per window."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--tenant", required=True, help="Name of the tenant.")
        parser.add_argument("--target", metavar="SLUG", help="Meter the calls on this target.")
        parser.add_argument("--credential", metavar="ID", help="Meter the calls of this credential.")
        parser.add_argument("--kind", required=True, choices=Meter.Kind.values)
        parser.add_argument("--window", required=True, choices=Meter.Window.values)
        parser.add_argument("--limit", required=True, type=float, help="Calls, or the sum of the values.")
        parser.add_argument("--route", default="", metavar="'METHOD /glob'", help="e.g. 'POST /tools/*'.")
        parser.add_argument(
            "--value-path",
            action="append",
            default=[],
            metavar="PATH",
            help="JSON path summed per call, e.g. $.result._meta.cost (repeatable).",
        )
        parser.add_argument("--fail-mode", choices=Meter.FailMode.values, default=Meter.FailMode.OPEN)
        parser.add_argument("--description", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant, target, credential = scope_from(options)
        with service_errors():
            meter = meter_create(
                tenant=tenant,
                target=target,
                credential=credential,
                kind=options["kind"],
                window=options["window"],
                limit=options["limit"],
                route=options["route"],
                value_paths=options["value_path"],
                fail_mode=options["fail_mode"],
                description=options["description"],
            )
        self.emit(options, as_json(meter), as_text(meter))


def as_json(meter: Meter) -> dict[str, Any]:
    return {
        "id": meter.pk,
        "name": meter.name,
        "tenant": meter.tenant.name,
        "scope": meter.scope,
        "target": meter.target.slug if meter.target else None,
        "credential_id": meter.credential_id,
        "kind": meter.kind,
        "window": meter.window,
        "limit": int(meter.limit) if float(meter.limit).is_integer() else meter.limit,
        "route": meter.route,
        "value_paths": meter.value_paths,
        "fail_mode": meter.fail_mode,
    }


def as_text(meter: Meter) -> str:
    counted = "calls" if meter.kind == Meter.Kind.REQUEST_COUNT else "of " + " + ".join(meter.value_paths)
    where = f" matching {meter.route}" if meter.route else ""
    return (
        f"Created meter {meter.name} for {meter.scope} "
        f"{meter.credential_id or (meter.target.slug if meter.target else meter.tenant.name)}: "
        f"{meter.limit:g} {counted} per {meter.window}{where}, fails {meter.fail_mode}."
    )
