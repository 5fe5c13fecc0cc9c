"""What every gateway management command shares.

``--json`` output (and, with ``--json``, errors as one JSON object on standard error:
``{"error": "...", "fields": {...}}``, exit status 1, or 2 for a usage error), service errors turned
into ``CommandError`` (a clear message and exit code 1, never a traceback), and lookups by the
identifiers an operator types: tenant names, target slugs, credential ids, ``METHOD /path``
routes and dates. The leading underscore keeps Django from listing this module as a command.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Model, ProtectedError, QuerySet

from audit.changes import changes_by
from gateway.models import Credential, Target, Tenant

Row = TypeVar("Row", bound=Model)

DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"
_METHOD = re.compile(r"^(\*|[A-Za-z]+)$")


class InvalidInput(CommandError):
    """A service refused the input; ``fields`` maps each field named to its messages."""

    def __init__(self, message: str, *, fields: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.fields = fields or {}


def error_body(error: CommandError | str) -> dict[str, Any]:
    """What ``--json`` prints on standard error for a failed command."""
    body: dict[str, Any] = {"error": str(error)}
    if isinstance(error, InvalidInput) and error.fields:
        body["fields"] = error.fields
    return body


class GatewayCommand(BaseCommand):
    """A command that prints JSON with ``--json`` and human-readable text otherwise; what it changes is
    recorded in the change log as made by ``cli:<os user>`` (audit/changes.py).

    Run from the shell with ``--json``, a failure is JSON on standard error too, so a script reads
    one shape whether the command worked or not: a ``CommandError`` exits with its status (1 unless
    it says otherwise), a usage error (unknown option, missing argument) with 2.
    """

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        if getattr(self, "_called_from_command_line", False) and self._json_requested:
            parser.error = self._usage_error_as_json  # type: ignore[method-assign]
        return parser

    def run_from_argv(self, argv: list[str]) -> None:
        # The options are not parsed yet when argparse may fail, so look for the flag itself.
        self._json_requested = "--json" in argv[2:]
        super().run_from_argv(argv)

    _json_requested = False

    def _usage_error_as_json(self, message: str) -> None:
        self._write_json_error({"error": message})
        sys.exit(2)

    def _write_json_error(self, body: dict[str, Any]) -> None:
        # Uncoloured: the error style would wrap the JSON in terminal escapes.
        self.stderr.write(json.dumps(body, cls=DjangoJSONEncoder), style_func=lambda text: text)

    def execute(self, *args: Any, **options: Any) -> Any:
        with changes_by(actor=cli_actor(), source="cli"):
            try:
                return super().execute(*args, **options)
            except CommandError as error:
                called = getattr(self, "_called_from_command_line", False)
                if not (called and options.get("json")) or options.get("traceback"):
                    raise
                self._write_json_error(error_body(error))
                sys.exit(error.returncode)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print the result as JSON.")

    def emit(self, options: dict[str, Any], data: dict[str, Any], text: str) -> None:
        """Print ``data`` as JSON when ``--json`` was given, ``text`` otherwise."""
        if options["json"]:
            self.stdout.write(json.dumps(data, indent=2, cls=DjangoJSONEncoder))
        else:
            self.stdout.write(text)


@contextmanager
def service_errors() -> Iterator[None]:
    """Turn the errors a service raises for bad input or configuration into ``CommandError``."""
    try:
        yield
    except ValidationError as error:
        fields = error.message_dict if hasattr(error, "error_dict") else {}
        raise InvalidInput(validation_message(error), fields=fields) from None
    except ImproperlyConfigured as error:
        raise CommandError(str(error)) from None
    except ProtectedError as error:
        raise CommandError(str(error.args[0])) from None


def validation_message(error: ValidationError) -> str:
    """One line per field: ``field: message``."""
    if not hasattr(error, "error_dict"):
        return " ".join(error.messages)
    return "; ".join(
        f"{field}: {' '.join(messages)}" if field != "__all__" else " ".join(messages)
        for field, messages in error.message_dict.items()
    )


def parse_route(value: str, *, option: str) -> tuple[str, str]:
    """Split ``'POST /tools/search'`` into ``("POST", "/tools/search")``."""
    method, _, path = value.strip().partition(" ")
    path = path.strip()
    if not _METHOD.match(method) or not path.startswith("/"):
        raise CommandError(f"{option} must be 'METHOD /path', e.g. 'POST /tools/search'; got {value!r}")
    return method.upper(), path


def parse_moment(value: str, *, option: str) -> datetime:
    """A date or time typed by an operator (ISO 8601), in UTC unless it names its zone."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(
            f"{option} must be a date or time such as 2026-01-31 or 2026-01-31T12:00; got {value!r}"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def tenant_by_name(name: str) -> Tenant:
    tenant = Tenant.objects.filter(name=name).first()
    if tenant is None:
        raise CommandError(f"No tenant named {name!r}.")
    return tenant


def target_by_slug(slug: str) -> Target:
    """The target reached at ``/mcp/<slug>/`` (its tenant loaded too); CommandError when there is none."""
    target = Target.objects.filter(slug=slug).select_related("tenant").first()
    if target is None:
        raise CommandError(f"No target with slug {slug!r}.")
    return target


def target_in_tenant(tenant: Tenant, slug: str) -> Target:
    target = target_by_slug(slug)
    if target.tenant_id != tenant.id:
        raise CommandError(f"Target {slug!r} belongs to another tenant than {tenant.name!r}.")
    return target


def credential_by_id(value: str) -> Credential:
    return row_by_id(Credential.objects.select_related("tenant"), value, "credential")


def row_by_id(rows: QuerySet[Row], value: str, what: str, *, prefix: str = "") -> Row:
    """The row of ``rows`` with id ``value`` (``prefix`` allowed before it, as in ``m12`` for a meter);
    CommandError naming ``what`` when there is none."""
    digits = value[len(prefix) :] if prefix and value.startswith(prefix) else value
    row = rows.filter(pk=int(digits)).first() if digits.isdigit() and len(digits) < 19 else None
    if row is None:
        raise CommandError(f"No {what} with id {value!r}.")
    return row


def listing_filters(options: dict[str, Any]) -> dict[str, Any]:
    """What a list command's optional ``--tenant NAME``, ``--target SLUG`` and ``--credential ID`` name,
    as keyword arguments for its selector: each option the command has, looked up (CommandError when
    nothing has that name), or None when it was not given."""
    lookups = {"tenant": tenant_by_name, "target": target_by_slug, "credential": credential_by_id}
    return {
        option: lookup(options[option]) if options[option] else None
        for option, lookup in lookups.items()
        if option in options
    }


def scope_from(options: dict[str, Any]) -> tuple[Tenant, Target | None, Credential | None]:
    """The tenant of ``--tenant``, and the target of ``--target`` / credential of ``--credential`` if
    given, each checked to belong to that tenant (meters, filters and redaction are scoped so)."""
    tenant = tenant_by_name(options["tenant"])
    target = target_in_tenant(tenant, options["target"]) if options["target"] else None
    credential = credential_by_id(options["credential"]) if options["credential"] else None
    if credential is not None and credential.tenant_id != tenant.id:
        raise CommandError(f"Credential {credential.id} belongs to another tenant than {tenant.name!r}.")
    return tenant, target, credential


def cli_actor() -> str:
    """``cli:<os user>``: who ran the command, as the audit trail records it."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def proxy_url(slug: str) -> str:
    """The URL agents use for target ``slug``, based on ``GATEWAY_PUBLIC_URL``."""
    base = os.environ.get("GATEWAY_PUBLIC_URL", "").strip() or DEFAULT_PUBLIC_URL
    return f"{base.rstrip('/')}/mcp/{slug}/"


class CredentialTransitionCommand(GatewayCommand):
    """A command that moves one credential, by id, into a final state (idempotent).

    Subclasses name the state (``state``: "revoked"), the timestamp field that records it and the
    service that makes the change; ``done_note`` is added to the text when this run made it.
    """

    state: str
    timestamp_field: str
    done_note: str = ""

    def transition(self, credential: Credential) -> None:
        raise NotImplementedError

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("id", help="Id of the credential.")

    def handle(self, *args: Any, **options: Any) -> None:
        credential = credential_by_id(options["id"])
        already = getattr(credential, self.timestamp_field) is not None
        self.transition(credential)
        stamp = getattr(credential, self.timestamp_field)
        when = f"{stamp:%Y-%m-%d %H:%M:%S %Z}"
        who = f"credential {credential.id} {credential.name!r}"
        if already:
            text = f"Credential {credential.id} {credential.name!r} was already {self.state} at {when}."
        else:
            text = f"{self.state.capitalize()} {who} at {when}.{self.done_note}"
        data = {
            "id": credential.id,
            "name": credential.name,
            "status": credential.status,
            self.timestamp_field: stamp,
            f"already_{self.state}": already,
        }
        self.emit(options, data, text)


def read_file(path: str, option: str) -> str:
    """The text of ``path``; CommandError naming ``option`` (never the content) when it cannot be read."""
    try:
        return Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"{option}: cannot read {path!r} ({type(exc).__name__}).") from None


def read_secret(path: str, option: str) -> str:
    """A secret from a file or standard input (``-``), its trailing line break dropped, so it never
    has to be typed on a command line (where other users and shell history could see it)."""
    text = sys.stdin.read() if path == "-" else read_file(path, option)
    return text.rstrip("\r\n")
