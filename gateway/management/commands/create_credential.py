"""``manage.py create_credential``: issue an agent credential bound to targets, with allow-rules.

An API key (the default ``--kind``): the token is printed once and only its SHA-256 digest is stored,
copy it when it is shown. A JWT credential (``--kind jwt``): the agent presents JWTs its identity
provider signs; give the issuer, audience, subject and one key source. An HS256 secret is read from
a file or standard input (``-``), never from the command line.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from gateway.management.commands._cli import (
    GatewayCommand,
    parse_route,
    proxy_url,
    read_file,
    read_secret,
    service_errors,
    target_in_tenant,
    tenant_by_name,
)
from gateway.models import Credential, Target, Tenant
from gateway.services import (
    IssuedCredential,
    JwtSettings,
    credential_create,
    expires_in,
    jwt_credential_create,
)

ALLOW_ALL = ("*", "/**")


class Command(GatewayCommand):
    """Create a credential and print its token (once; an API key) or its JWT settings, and proxy URL."""

    help = "Create an agent credential: an API key (token printed once) or a JWT credential (--kind jwt)."

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
        parser.add_argument("--kind", choices=["api_key", "jwt"], default="api_key", help="Default: api_key.")
        jwt = parser.add_argument_group("JWT credentials (--kind jwt)")
        jwt.add_argument("--issuer", help="The exact iss claim of accepted tokens.")
        jwt.add_argument("--audience", help="A value the aud claim must hold.")
        jwt.add_argument("--subject", help="The value the subject claim must have.")
        jwt.add_argument("--subject-claim", default="sub", help="The claim naming the agent (default: sub).")
        jwt.add_argument("--leeway", type=int, default=30, metavar="SECONDS", help="Clock skew (default 30).")
        source = jwt.add_mutually_exclusive_group()
        source.add_argument("--jwks-url", help="The identity provider's JWKS (https://).")
        source.add_argument("--public-key", metavar="FILE", help="A PEM RSA (RS256) or EC P-256 (ES256) key.")
        source.add_argument(
            "--hs256-secret-file", metavar="FILE", help="A file holding the HS256 secret, or - for stdin."
        )

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
        if options["kind"] == "jwt":
            self._create_jwt(options, tenant=tenant, targets=targets, rules=rules)
            return
        with service_errors():
            issued = credential_create(
                tenant=tenant,
                name=options["name"],
                targets=targets,
                allow=rules,
                expires_at=expires_in(options["expires_in"]),
            )
        urls = self._urls_warning_if_no_rule(targets, rules)
        self.emit(options, as_json(issued, urls), as_text(issued, urls, rules))

    def _urls_warning_if_no_rule(self, targets: list[Target], rules: list[tuple[str, str]]) -> list[str]:
        """The proxy URLs of ``targets``; a warning on stderr when no rule allows anything."""
        if not rules:
            self.stderr.write("Warning: no allow-rule was given, so every call will be denied (use --allow).")
        return [proxy_url(target.slug) for target in targets]

    def _create_jwt(
        self, options: dict[str, Any], *, tenant: Tenant, targets: list[Target], rules: list[tuple[str, str]]
    ) -> None:
        jwt = JwtSettings(
            issuer=_required(options, "issuer"),
            audience=_required(options, "audience"),
            subject=_required(options, "subject"),
            subject_claim=options["subject_claim"],
            leeway_seconds=options["leeway"],
            jwks_url=options["jwks_url"] or "",
            public_key=read_file(options["public_key"], "--public-key") if options["public_key"] else "",
            hs256_secret=(
                read_secret(options["hs256_secret_file"], "--hs256-secret-file")
                if options["hs256_secret_file"]
                else ""
            ),
        )
        with service_errors():
            credential = jwt_credential_create(
                tenant=tenant,
                name=options["name"],
                jwt=jwt,
                targets=targets,
                allow=rules,
                expires_at=expires_in(options["expires_in"]),
            )
        urls = self._urls_warning_if_no_rule(targets, rules)
        self.emit(options, jwt_as_json(credential, urls), jwt_as_text(credential, urls, rules))


def _required(options: dict[str, Any], name: str) -> str:
    value = options[name.replace("-", "_")]
    if not value:
        raise CommandError(f"--{name} is required with --kind jwt.")
    return str(value)


def jwt_as_json(credential: Credential, urls: list[str]) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": credential.id,
        "kind": credential.kind,
        "issuer": credential.jwt_issuer,
        "audience": credential.jwt_audience,
        "subject_claim": credential.jwt_subject_claim,
        "subject": credential.jwt_subject,
        "key_source": key_source(credential),
        "proxy_url": urls[0],
    }
    if len(urls) > 1:
        data["proxy_urls"] = urls
    return data


def key_source(credential: Credential) -> str:
    """How a JWT credential verifies, never the secret: ``hs256-secret``, ``public-key`` or the JWKS URL."""
    if credential.has_hs256_secret:
        return "hs256-secret"
    return "public-key" if credential.jwt_public_key else credential.jwt_jwks_url


def jwt_as_text(credential: Credential, urls: list[str], rules: list[tuple[str, str]]) -> str:
    name, tenant = credential.name, credential.tenant.name
    claim, subject = credential.jwt_subject_claim, credential.jwt_subject
    lines = [
        f"Created JWT credential {name!r} (id {credential.id}) for tenant {tenant!r}.",
        f"Accepts JWTs from {credential.jwt_issuer} for audience {credential.jwt_audience!r} with "
        f"{claim} = {subject!r}, verified with {key_source(credential)}.",
        *(f"Proxy URL: {url}" for url in urls),
        *(f"Allow: {method} {path}" for method, path in rules),
    ]
    return "\n".join(lines)


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
