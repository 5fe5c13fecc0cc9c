"""Running management commands in tests as a user types them."""

from __future__ import annotations

import shlex
from io import StringIO

from django.core.management import call_command


def run_command(line: str, *args: str) -> str:
    """Run ``line`` (a ``manage.py`` command line, shell-quoted) plus ``args``; return what it printed."""
    out = StringIO()
    call_command(*shlex.split(line), *args, stdout=out, stderr=StringIO())
    return out.getvalue()
