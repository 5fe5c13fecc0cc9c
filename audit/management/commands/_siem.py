"""What the SIEM sink commands share: a sink by the id ``list_siem_sinks`` prints, the ``--sink-settings``
JSON, the webhook secret read from a file or standard input, and how a sink is shown."""

from __future__ import annotations

import getpass
import json
import sys
from typing import Any

from django.core.management.base import CommandError

from audit.models import SiemSink
from audit.siem.selectors import siem_sink_summary
from gateway.management.commands._cli import read_secret, row_by_id


def sink_by_id(value: str) -> SiemSink:
    """The sink with id ``value`` (its tenant and delivery state loaded); CommandError when none."""
    return row_by_id(SiemSink.objects.select_related("tenant", "state"), value, "SIEM sink")


def settings_json(raw: str | None) -> dict[str, Any]:
    """The JSON object of ``--sink-settings`` (empty when not given)."""
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CommandError(f"--sink-settings is not JSON: {exc.msg}") from None
    if not isinstance(value, dict):
        raise CommandError("--sink-settings must be a JSON object")
    return value


def webhook_secret(secret_file: str | None) -> str:
    """The webhook secret from ``--secret-file`` (``-``: standard input), or from standard input (a
    prompt on a terminal) without one; never echoed."""
    if secret_file:
        return read_secret(secret_file, "--secret-file")
    if sys.stdin.isatty():
        return getpass.getpass("Webhook signing secret: ")
    return read_secret("-", "stdin")


def sink_summary(sink: SiemSink) -> dict[str, Any]:
    """The sink as ``--json`` prints it: its settings, whether a secret is set, where delivery stands."""
    try:
        state = sink.state
    except SiemSink.state.RelatedObjectDoesNotExist:
        state = None
    return siem_sink_summary(sink, state)


def sink_text(summary: dict[str, Any]) -> str:
    """The sink, one fact per line."""
    lines = [
        f"SIEM sink {summary['id']} {summary['tenant']}/{summary['name']}: {summary['kind']}, "
        + ("enabled" if summary["enabled"] else "disabled"),
        f"  settings: {json.dumps(summary['settings'], sort_keys=True)}",
        f"  secret: {'set' if summary['has_secret'] else 'not set'}",
        f"  cursor {summary['cursor']}, backlog {summary['backlog']}, delivered {summary['delivered']}, "
        f"failures {summary['failures']}",
    ]
    for name in ("last_error", "last_success_at", "last_attempt_at", "next_attempt_at"):
        if summary[name]:
            lines.append(f"  {name.replace('_', ' ')}: {summary[name]}")
    return "\n".join(lines)
