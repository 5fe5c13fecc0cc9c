"""``manage.py create_filter``: delete JSON paths from the results agents receive.

Scoped to the tenant, or with ``--target`` or ``--credential`` to one of its targets or credentials;
``--route`` narrows it to matching calls. Filters stack: the tenant's, then the target's, then the
credential's. Every gateway process applies it within a second.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from gateway.management.commands._cli import GatewayCommand, service_errors
from policies.management.commands._scope import add_scope_arguments, scope_as_json, scope_as_text, scope_from
from policies.services import filter_create


class Command(GatewayCommand):
    """Create a response filter and print it."""

    help = "Create a response filter: delete every match of JSON paths from results (or count them)."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        add_scope_arguments(parser)
        parser.add_argument(
            "--path",
            action="append",
            required=True,
            metavar="PATH",
            help="JSON path to delete, e.g. '$..id' or '$.owner' (repeatable).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        tenant, target, credential = scope_from(options)
        with service_errors():
            row = filter_create(
                tenant=tenant,
                target=target,
                credential=credential,
                route=options["route"],
                paths=options["path"],
                mode=options["mode"],
            )
        verb = "Deletes" if row.mode == "enforce" else "Counts (monitor mode)"
        text = f"Created filter {row.pk} for {scope_as_text(row)}. {verb}: {', '.join(row.paths)}."
        self.emit(options, {"id": row.pk, **scope_as_json(row), "paths": row.paths}, text)
