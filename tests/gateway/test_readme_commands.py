"""The README's administration commands, run as written on a fresh clone's embedded default.

They are parsed from README.md, so the documentation cannot drift from what works.
"""

from __future__ import annotations

import shlex
import subprocess
import sys

from tests.gateway.test_operations import ROOT, embedded_default_env


def readme_administration_commands() -> list[str]:
    """The ``python3 dev.py manage ...`` lines of the README's Administration section."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Administration", 1)[1].split("\n## ", 1)[0]
    return [
        line.strip() for line in section.splitlines() if line.strip().startswith("python3 dev.py manage ")
    ]


# Interactive, or serving until stopped: covered by tests/gateway/test_serve.py and the demo test.
NOT_RUN_HERE = ("createsuperuser", "serve")


# Runs each command line given on standard input in one Django process, as manage.py would (the same
# argument parsing, output and exit status), and stops at the first that fails, naming it. Started
# through ``dev.py manage shell``, so every command gets exactly the environment ``dev.py manage``
# gives; one process instead of one per command keeps this test from costing a Python and Django
# start-up per line.
BATCH = """
import shlex, sys
from django.core.management import ManagementUtility
for line in sys.stdin.read().splitlines():
    print("$ " + line, flush=True)
    try:
        ManagementUtility(["manage.py", *shlex.split(line, comments=True)[3:]]).execute()
        status = 0
    except SystemExit as stop:
        status = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    if status:
        sys.exit(f"exit status {status}: {line}")
"""


def test_the_readme_administration_commands_run_as_written(tmp_path):
    commands = [
        command
        for command in readme_administration_commands()
        if shlex.split(command, comments=True)[3] not in NOT_RUN_HERE
    ]
    assert len(commands) >= 10
    env = embedded_default_env(tmp_path)
    # the first exactly as a user types it (dev.py builds the venv and runs manage.py) ...
    first = subprocess.run(
        [sys.executable, *shlex.split(commands[0], comments=True)[1:]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert first.returncode == 0, f"{commands[0]}\n{first.stdout}\n{first.stderr}"
    # ... and the rest, in order, through the same dev.py manage in one process
    rest = subprocess.run(
        [sys.executable, "dev.py", "manage", "shell", "-c", BATCH],
        cwd=ROOT,
        env=env,
        input="\n".join(commands[1:]),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert rest.returncode == 0, f"{rest.stdout[-4000:]}\n{rest.stderr[-4000:]}"
    assert rest.stdout.count("\n$ ") + rest.stdout.startswith("$ ") == len(commands) - 1
