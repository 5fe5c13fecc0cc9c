"""Running management commands in tests as a user types them."""

from __future__ import annotations

import json
import shlex
from io import StringIO
from typing import Any

from django.core.management import call_command
from django.core.management.base import CommandError


def run_command(line: str, *args: str) -> str:
    """Run ``line`` (a ``manage.py`` command line, shell-quoted) plus ``args``; return what it printed."""
    out = StringIO()
    call_command(*shlex.split(line), *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def run_verdict(line: str, *args: str) -> tuple[bool, dict[str, Any]]:
    """Run a checking command (``verify_audit``, ``verify_export``) with ``--json``: (whether it passed,
    its JSON report). Such a command prints its report and then fails when it finds a problem."""
    out = StringIO()
    try:
        call_command(*shlex.split(line), *args, "--json", stdout=out, stderr=StringIO())
    except CommandError:
        return False, json.loads(out.getvalue())
    return True, json.loads(out.getvalue())
