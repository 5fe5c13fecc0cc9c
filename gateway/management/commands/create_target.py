"""``manage.py create_target``: register an upstream MCP (or plain HTTP) server for a tenant.

The upstream secret given with ``--upstream-bearer`` or ``--upstream-header`` is encrypted before
it is stored and is never printed back. ``--hold-new-tools``, ``--no-argument-validation`` and
``--trusted-url-host`` set how the target's tool definitions are pinned, checked and scanned.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from gateway.management.commands._cli import (
    GatewayCommand,
    proxy_url,
    read_secret,
    service_errors,
    tenant_by_name,
)
from gateway.models import Target
from gateway.services import target_create


class Command(GatewayCommand):
    """Create a target reached by agents at ``/mcp/<slug>/``."""

    help = "Create a target: an upstream MCP server proxied at /mcp/<slug>/."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--tenant", required=True, help="Name of the tenant owning the target.")
        parser.add_argument("--slug", required=True, help="The proxy URL is /mcp/<slug>/.")
        parser.add_argument("--upstream", required=True, help="URL of the upstream server.")
        auth = parser.add_mutually_exclusive_group()
        auth.add_argument("--upstream-bearer", metavar="SECRET", help="Send 'Authorization: Bearer SECRET'.")
        auth.add_argument(
            "--upstream-bearer-file",
            metavar="FILE",
            help="Like --upstream-bearer, the secret read from FILE, or - for stdin (off the command line).",
        )
        auth.add_argument("--upstream-header", metavar="'Name: value'", help="Send a custom secret header.")
        auth.add_argument(
            "--upstream-header-file",
            metavar="FILE",
            help="Like --upstream-header, 'Name: value' read from FILE, or - for stdin.",
        )
        parser.add_argument("--kind", choices=Target.Kind.values, default=Target.Kind.MCP)
        parser.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS")
        parser.add_argument(
            "--allowed-origin", action="append", default=[], metavar="ORIGIN", help="Repeatable."
        )
        parser.add_argument(
            "--hold-new-tools",
            action="store_true",
            help="Hold a tool seen for the first time until an admin approves it (default: approve it).",
        )
        parser.add_argument(
            "--no-argument-validation",
            action="store_true",
            help="Forward tools/call arguments without checking them against the tool's input schema.",
        )
        parser.add_argument(
            "--trusted-url-host",
            action="append",
            default=[],
            metavar="HOST",
            help="A host (and its subdomains) whose URLs in tool definitions are not flagged. Repeatable.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = tenant_by_name(options["tenant"])
        auth = upstream_auth(options)
        with service_errors():
            target = target_create(
                tenant=tenant,
                slug=options["slug"],
                upstream_url=options["upstream"],
                kind=options["kind"],
                timeout_seconds=options["timeout"],
                allowed_origins=options["allowed_origin"],
                hold_new_tools=options["hold_new_tools"],
                validate_arguments=not options["no_argument_validation"],
                trusted_url_hosts=options["trusted_url_host"],
                **auth,
            )
        self.emit(options, describe(target), describe_text(target))


def upstream_auth(options: dict[str, Any]) -> dict[str, str]:
    """The ``target_create`` auth arguments chosen on the command line."""
    bearer = options["upstream_bearer"]
    if options.get("upstream_bearer_file"):
        bearer = read_secret(options["upstream_bearer_file"], "--upstream-bearer-file")
    if bearer is not None:
        return {"auth_type": Target.AuthType.BEARER, "auth_secret": bearer}
    header = options["upstream_header"]
    if options.get("upstream_header_file"):
        header = read_secret(options["upstream_header_file"], "--upstream-header-file")
    if header is None:
        return {"auth_type": Target.AuthType.NONE}
    name, colon, value = header.partition(":")
    if not colon or not name.strip() or not value.strip():
        # The value is a secret: name the expected shape, never echo what was given.
        raise CommandError("--upstream-header must be 'Name: value', e.g. 'X-Api-Key: s3cr3t'.")
    return {
        "auth_type": Target.AuthType.HEADER,
        "auth_header_name": name.strip(),
        "auth_secret": value.strip(),
    }


def describe(target: Target) -> dict[str, Any]:
    return {
        "id": target.id,
        "tenant": target.tenant.name,
        "slug": target.slug,
        "kind": target.kind,
        "upstream_url": target.upstream_url,
        "auth_type": target.auth_type,
        "auth_header_name": target.auth_header_name,
        "upstream_secret": "set" if target.has_upstream_secret else "not set",
        "timeout_seconds": target.timeout_seconds,
        "allowed_origins": target.allowed_origin_list(),
        "hold_new_tools": target.hold_new_tools,
        "validate_arguments": target.validate_arguments,
        "trusted_url_hosts": target.trusted_url_hosts.split(),
        "proxy_url": proxy_url(target.slug),
    }


def describe_text(target: Target) -> str:
    tools = "new ones held for approval" if target.hold_new_tools else "new ones approved unless flagged"
    tools += "; arguments validated" if target.validate_arguments else "; arguments not validated"
    if target.trusted_url_hosts:
        tools += f"; URLs trusted on {', '.join(target.trusted_url_hosts.split())}"
    auth = target.get_auth_type_display()
    if target.auth_type == Target.AuthType.HEADER:
        auth = f"{auth} {target.auth_header_name}"
    return (
        f"Created target {target.slug!r} (id {target.id}) for tenant {target.tenant.name!r}.\n"
        f"Upstream: {target.upstream_url} ({target.kind}, timeout {target.timeout_seconds:g}s)\n"
        f"Upstream auth: {auth}; secret {'set' if target.has_upstream_secret else 'not set'}\n"
        f"Tools: {tools}\n"
        f"Proxy URL: {proxy_url(target.slug)}"
    )
