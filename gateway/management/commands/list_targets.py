"""``manage.py list_targets [--tenant T] [--json]``: the targets (upstream servers) and their proxy URLs.

An upstream secret is shown only as "set" or "not set".
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from gateway.management.commands._cli import GatewayCommand, listing_filters, proxy_url
from gateway.management.commands.create_target import describe
from gateway.models import Target
from gateway.selectors import target_list


class Command(GatewayCommand):
    """List targets by slug."""

    help = "List the targets: upstream, kind, upstream auth (never the secret) and proxy URL."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--tenant", metavar="NAME", help="Only this tenant's targets.")

    def handle(self, *args: Any, **options: Any) -> None:
        targets = list(target_list(**listing_filters(options)))
        data = {"targets": [describe(target) for target in targets]}
        self.emit(options, data, "\n".join(target_line(t) for t in targets) or "No target.")


def target_line(target: Target) -> str:
    return (
        f"{target.slug}  tenant {target.tenant.name}  {target.kind} {target.upstream_url}  "
        f"auth {target.auth_type}  -> {proxy_url(target.slug)}"
    )
