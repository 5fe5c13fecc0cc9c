"""``manage.py set_redaction``: mask, pseudonymise or drop PII and secrets in the results agents receive.

Sets the redaction policy of a scope (the tenant, or with ``--target`` or ``--credential`` one of its
targets or credentials, and ``--route``): run again for the same scope, it replaces the detectors,
action and mode. Every gateway process applies it within a second.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from gateway.management.commands._cli import GatewayCommand, service_errors
from policies.management.commands._scope import add_scope_arguments, scope_as_json, scope_as_text, scope_from
from policies.models import RedactionPolicy
from policies.redaction import DETECTORS
from policies.services import redaction_policy_set


class Command(GatewayCommand):
    """Set a redaction policy and print it."""

    help = "Set a redaction policy: detectors and what to do with what they find."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        add_scope_arguments(parser)
        parser.add_argument(
            "--detectors",
            required=True,
            metavar="NAMES",
            help=f"Comma-separated: {', '.join(DETECTORS)}, or all.",
        )
        parser.add_argument("--action", required=True, choices=RedactionPolicy.Action.values)

    def handle(self, *args: Any, **options: Any) -> None:
        tenant, target, credential = scope_from(options)
        with service_errors():
            row = redaction_policy_set(
                tenant=tenant,
                target=target,
                credential=credential,
                route=options["route"],
                detectors=options["detectors"].split(","),
                action=options["action"],
                mode=options["mode"],
            )
        monitor = " (monitor mode: counts only)" if row.mode == "monitor" else ""
        text = (
            f"Redaction policy {row.pk} for {scope_as_text(row)}: "
            f"{row.action} {', '.join(row.detectors)}{monitor}."
        )
        data = {"id": row.pk, **scope_as_json(row), "detectors": row.detectors, "action": row.action}
        self.emit(options, data, text)
