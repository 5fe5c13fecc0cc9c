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


def test_the_readme_administration_commands_run_as_written(tmp_path):
    commands = readme_administration_commands()
    assert len(commands) >= 10
    env = embedded_default_env(tmp_path)
    for command in commands:
        args = shlex.split(command, comments=True)
        if args[3] in NOT_RUN_HERE:
            continue
        result = subprocess.run(
            [sys.executable, *args[1:]], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
