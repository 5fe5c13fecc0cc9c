"""``manage.py delete_target SLUG [--json]``: delete a target.

Its meters, protections and pinned tools go with it and its credentials lose the binding; the audit
events of its calls stay.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from gateway.management.commands._cli import GatewayCommand, service_errors, target_by_slug
from gateway.services import target_delete


class Command(GatewayCommand):
    """Delete a target by slug."""

    help = "Delete a target (its meters, protections and pinned tools too; audit events stay)."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("slug", help="The target's slug.")

    def handle(self, *args: Any, **options: Any) -> None:
        target = target_by_slug(options["slug"])
        target_id, tenant = target.id, target.tenant.name
        with service_errors():
            target_delete(target=target)
        self.emit(
            options,
            {"id": target_id, "slug": options["slug"], "tenant": tenant, "deleted": True},
            f"Deleted target {options['slug']!r} of tenant {tenant!r}.",
        )
