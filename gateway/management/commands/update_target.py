"""``manage.py update_target SLUG [options] [--json]``: change a target's upstream, timeout, origins,
tool settings or upstream secret; what is not given stays as it is.

A new upstream secret is read from a file or standard input (``--upstream-bearer-file``,
``--upstream-header-file``), never from the command line, encrypted and never printed back.
"""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.db import transaction

from gateway.management.commands._cli import GatewayCommand, service_errors, target_by_slug
from gateway.management.commands.create_target import describe, describe_text, upstream_auth
from gateway.models import Target
from gateway.services import target_set_upstream_auth, target_update

CHANGES = (
    "upstream",
    "timeout",
    "allowed_origin",
    "hold_new_tools",
    "argument_validation",
    "trusted_url_host",
    "upstream_bearer_file",
    "upstream_header_file",
    "no_upstream_auth",
)


class Command(GatewayCommand):
    """Update a target and print it as it now is."""

    help = "Change a target's upstream, timeout, allowed origins, tool settings or upstream secret."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("slug", help="The target's slug (it cannot change: agents use it in the URL).")
        parser.add_argument(
            "--upstream", metavar="URL", help="New upstream URL (checked by the SSRF policy)."
        )
        parser.add_argument("--timeout", type=float, metavar="SECONDS")
        parser.add_argument(
            "--allowed-origin",
            action="append",
            metavar="ORIGIN",
            help="Replace the allowed browser origins (repeatable); --allowed-origin '' clears them.",
        )
        parser.add_argument("--hold-new-tools", action=argparse.BooleanOptionalAction, default=None)
        parser.add_argument("--argument-validation", action=argparse.BooleanOptionalAction, default=None)
        parser.add_argument(
            "--trusted-url-host",
            action="append",
            metavar="HOST",
            help="Replace the trusted URL hosts (repeatable); --trusted-url-host '' clears them.",
        )
        auth = parser.add_mutually_exclusive_group()
        auth.add_argument("--upstream-bearer-file", metavar="FILE", help="New bearer secret, or - for stdin.")
        auth.add_argument("--upstream-header-file", metavar="FILE", help="New 'Name: value', or - for stdin.")
        auth.add_argument("--no-upstream-auth", action="store_true", help="Send no upstream secret.")
        parser.set_defaults(upstream_bearer=None, upstream_header=None)

    def handle(self, *args: Any, **options: Any) -> None:
        if not any(options[name] not in (None, False) for name in CHANGES):
            raise CommandError(f"Nothing to change: give at least one of --{', --'.join(_flags())}.")
        target = target_by_slug(options["slug"])
        auth: dict[str, str] = {}
        if options["no_upstream_auth"]:
            auth = {"auth_type": Target.AuthType.NONE}
        elif options["upstream_bearer_file"] or options["upstream_header_file"]:
            auth = upstream_auth(options)
        given = {
            "upstream_url": options["upstream"],
            "timeout_seconds": options["timeout"],
            "hold_new_tools": options["hold_new_tools"],
            "validate_arguments": options["argument_validation"],
        }
        with service_errors(), transaction.atomic():
            target = target_update(
                target=target,
                data={name: value for name, value in given.items() if value is not None},
                allowed_origins=_listed(options["allowed_origin"]),
                trusted_url_hosts=_listed(options["trusted_url_host"]),
            )
            if auth:
                target = target_set_upstream_auth(
                    target=target,
                    auth_type=auth["auth_type"],
                    header_name=auth.get("auth_header_name", ""),
                    secret=auth.get("auth_secret", ""),
                )
        self.emit(
            options, describe(target), describe_text(target).replace("Created target", "Updated target", 1)
        )


def _listed(values: list[str] | None) -> list[str] | None:
    return None if values is None else [value.strip() for value in values if value.strip()]


def _flags() -> list[str]:
    return [name.replace("_", "-") for name in CHANGES]
