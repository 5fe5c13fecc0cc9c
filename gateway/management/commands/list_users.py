"""``manage.py list_users [--tenant T] [--json]``: the users who may sign in, and their tenant role."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from gateway.management.commands._cli import GatewayCommand, listing_filters
from gateway.management.commands._describe import user_as_json, user_line
from gateway.selectors import user_list


class Command(GatewayCommand):
    """List staff users and superusers, with the tenant and role each one has."""

    help = "List the users (superusers, tenant admins, reviewers) and their tenant role."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--tenant", metavar="NAME", help="Only this tenant's admins and reviewers.")

    def handle(self, *args: Any, **options: Any) -> None:
        users = list(user_list(**listing_filters(options)))
        data = {"users": [user_as_json(user) for user in users]}
        self.emit(options, data, "\n".join(user_line(user) for user in users) or "No user.")
