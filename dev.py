#!/usr/bin/env python3
"""Set-up entry point for a fresh machine with only Python 3.11+.

    python3 dev.py demo   run the gateway with a demo MCP server, tenant, target and token
    python3 dev.py test   run the test suite

Each command first makes ``.venv`` from ``requirements.txt`` (again only when that file changed).
``test`` uses PostgreSQL and Redis on 127.0.0.1 when they answer (or DATABASE_URL / REDIS_URL when
set), and otherwise SQLite with the Redis tests skipped.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = VENV / "bin" / "python"
STAMP = VENV / ".requirements.sha256"


def bootstrap() -> None:
    """Create the virtual environment and install the pinned requirements when they changed."""
    if sys.version_info < (3, 11):  # noqa: UP036 - runs on whatever python3 the machine has
        sys.exit("Python 3.11 or newer is required")
    digest = hashlib.sha256((ROOT / "requirements.txt").read_bytes()).hexdigest()
    if PYTHON.exists() and STAMP.exists() and STAMP.read_text() == digest:
        return
    if not PYTHON.exists():
        print("creating .venv ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    print("installing requirements.txt ...", flush=True)
    pip = [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "-r", str(ROOT / "requirements.txt")], check=True)
    STAMP.write_text(digest)


def _answers(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test(args: list[str]) -> int:
    env = dict(os.environ)
    if "DATABASE_URL" not in env and _answers(5432):
        env["DATABASE_URL"] = "postgres://postgres@127.0.0.1:5432/gateway"
    if "REDIS_URL" not in env and _answers(6379):
        env["REDIS_URL"] = "redis://127.0.0.1:6379/0"
    redis = env.get("REDIS_URL", "none (Redis tests skip)")
    print(f"database: {env.get('DATABASE_URL', 'SQLite')}; redis: {redis}", flush=True)
    return subprocess.call([str(PYTHON), "-m", "pytest", "-q", "-rs", *args], cwd=ROOT, env=env)


def demo(args: list[str]) -> int:
    env = dict(os.environ)
    env.setdefault("DEBUG", "1")  # the embedded default: dev keys are generated into git-ignored files
    return subprocess.call([str(PYTHON), "manage.py", "demo", *args], cwd=ROOT, env=env)


def main() -> int:
    commands = {"test": test, "demo": demo}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__)
        return 2
    bootstrap()
    return commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
