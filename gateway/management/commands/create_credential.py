"""``manage.py create_credential``: issue an agent credential bound to targets, with allow-rules.

The token is printed once and only its SHA-256 digest is stored: copy it when it is shown.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from gateway.management.commands._cli import (
    GatewayCommand,
    parse_route,
    proxy_url,
    service_errors,
    target_in_tenant,
    tenant_by_name,
)
from gateway.services import IssuedCredential, credential_create, expires_in

ALLOW_ALL = ("*", "/**")


class Command(GatewayCommand):
    """Create a credential and print its token (once) and proxy URL."""

    help = "Create an agent credential; prints its token once."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--tenant", required=True, help="Name of the tenant owning the credential.")
        parser.add_argument(
            "--target", required=True, action="append", metavar="SLUG", help="Target to bind (repeatable)."
        )
        parser.add_argument("--name", required=True, help="Name of the agent, unique within the tenant.")
        parser.add_argument(
            "--allow",
            action="append",
            default=[],
            metavar="'METHOD /path'",
            help="Allow a route, e.g. 'POST /tools/search' or 'POST /tools/*' (repeatable).",
        )
        parser.add_argument("--allow-all", action="store_true", help="Allow every route ('* /**').")
        parser.add_argument("--expires-in", type=int, metavar="SECONDS", help="Expire after SECONDS.")

    def handle(self, *args: Any, **options: Any) -> None:
        rules = [parse_route(value, option="--allow") for value in options["allow"]]
        if options["allow_all"]:
            rules.append(ALLOW_ALL)
        if options["expires_in"] is not None and options["expires_in"] <= 0:
            raise CommandError(
                f"--expires-in must be a positive number of seconds; got {options['expires_in']}."
            )
        tenant = tenant_by_name(options["tenant"])
        targets = [target_in_tenant(tenant, slug) for slug in dict.fromkeys(options["target"])]
        with service_errors():
            issued = credential_create(
                tenant=tenant,
                name=options["name"],
                targets=targets,
                allow=rules,
                expires_at=expires_in(options["expires_in"]),
            )
        urls = [proxy_url(target.slug) for target in targets]
        if not rules:
            self.stderr.write("Warning: no allow-rule was given, so every call will be denied (use --allow).")
        self.emit(options, as_json(issued, urls), as_text(issued, urls, rules))


def as_json(issued: IssuedCredential, urls: list[str]) -> dict[str, Any]:
    data: dict[str, Any] = {"id": issued.credential.id, "token": issued.token, "proxy_url": urls[0]}
    if len(urls) > 1:
        data["proxy_urls"] = urls
    return data


def as_text(issued: IssuedCredential, urls: list[str], rules: list[tuple[str, str]]) -> str:
    credential = issued.credential
    expiry = (
        f"expires {credential.expires_at:%Y-%m-%d %H:%M:%S %Z}" if credential.expires_at else "never expires"
    )
    created = (
        f"Created credential {credential.name!r} (id {credential.id}) for tenant {credential.tenant.name!r}"
    )
    lines = [
        f"{created}; it {expiry}.",
        f"Token (shown once, it cannot be recovered): {issued.token}",
        *(f"Proxy URL: {url}" for url in urls),
        *(f"Allow: {method} {path}" for method, path in rules),
    ]
    return "\n".join(lines)
