#!/usr/bin/env python3
"""Set-up entry point for a fresh machine with only Python 3.11+.

    python3 dev.py demo              run the gateway with a demo MCP server, tenant, target and token
    python3 dev.py test [pytest args] run the test suite (pytest-xdist: one worker per core, at most 4)
    python3 dev.py manage <command>  run a management command (``manage.py``) in the venv
    python3 dev.py lint              ruff check, ruff format --check and mypy (pyproject.toml)

Each command first makes ``.venv`` from ``requirements.txt`` (again only when that file changed).
``test`` uses PostgreSQL and Redis on 127.0.0.1 when they answer (or DATABASE_URL / REDIS_URL when
set), and otherwise SQLite with the Redis tests skipped. ``demo`` and ``manage`` run on the embedded
default unless configured: the SQLite file ``db.sqlite3`` and, when neither SECRET_KEY nor
GATEWAY_ENCRYPTION_KEYS is set, DEBUG on with development keys generated into git-ignored files.
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
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
    workers = _test_workers(args)
    print(f"database: {env.get('DATABASE_URL', 'SQLite')}; redis: {redis}; workers: {workers}", flush=True)
    parallel = ["-n", str(workers)] if workers > 1 else []
    return subprocess.call([str(PYTHON), "-m", "pytest", "-q", "-rs", *parallel, *args], cwd=ROOT, env=env)


def _test_workers(args: list[str]) -> int:
    """How many pytest-xdist workers: one per core, at most 4 (most tests wait on servers and sockets,
    so two workers on two cores halve the wall time); 1 when the arguments choose (``-n``, ``-p
    no:xdist``) or name single tests. Each worker has its own database and Redis db (tests/settings.py)."""
    if any(arg == "-n" or arg.startswith("-n") or arg == "no:xdist" for arg in args):
        return 1
    if any("::" in arg for arg in args):
        return 1
    return max(1, min(os.cpu_count() or 1, 4))


def lint(args: list[str]) -> int:
    """Run every linter and the type checker; non-zero if any of them fails."""
    tools = [["ruff", "check", "."], ["ruff", "format", "--check", "."], ["mypy"]]
    failed = [
        " ".join(tool)
        for tool in tools
        if subprocess.call([str(VENV / "bin" / tool[0]), *tool[1:]], cwd=ROOT)
    ]
    for name in failed:
        print(f"failed: {name}", file=sys.stderr)
    return 1 if failed else 0


def embedded_default_env() -> dict[str, str]:
    """The environment, with DEBUG on (development keys) when no key is configured."""
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings")
    if not (env.get("SECRET_KEY") or env.get("GATEWAY_ENCRYPTION_KEYS")):
        env.setdefault("DEBUG", "1")
    return env


def demo(args: list[str]) -> int:
    # Its own process group: the gateway server and the demo MCP server get the signal together,
    # and a last SIGKILL to the group leaves nothing behind. It reads nothing from the terminal.
    return run_child([str(PYTHON), "manage.py", "demo", *args], embedded_default_env(), own_group=True)


def manage(args: list[str]) -> int:
    # In our process group, so interactive commands (createsuperuser) can read the terminal.
    return run_child([str(PYTHON), "manage.py", *(args or ["help"])], embedded_default_env())


# Seconds a stopping child gets after the signal is passed on (serve's own grace is 30 s).
STOP_GRACE_SECONDS = 40


def run_child(command: list[str], env: dict[str, str], *, own_group: bool = False) -> int:
    """Run ``command``; SIGTERM, SIGINT and SIGHUP to dev.py are passed on to it, then awaited.

    Without ``own_group``, Ctrl-C at a terminal already reaches the child (it shares our foreground
    process group), so a SIGINT is forwarded only when we are not that group: a second one would
    force the server down without its graceful shutdown. A child still running
    ``STOP_GRACE_SECONDS`` after a signal is killed (its whole group with ``own_group``).
    """
    child = subprocess.Popen(command, cwd=ROOT, env=env, process_group=0 if own_group else None)
    stop_by: list[float] = []

    def forward(signum: int, frame: object) -> None:
        if child.poll() is not None:
            return
        stop_by.append(time.monotonic() + STOP_GRACE_SECONDS)
        if own_group:
            os.killpg(child.pid, signum)
        elif not (signum == signal.SIGINT and _in_terminal_foreground()):
            child.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    while True:
        try:
            return child.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            if stop_by and time.monotonic() > stop_by[0]:
                _kill(child, own_group=own_group)


def _kill(child: subprocess.Popen[bytes], *, own_group: bool) -> None:
    try:
        if own_group:
            os.killpg(child.pid, signal.SIGKILL)
        else:
            child.kill()
    except ProcessLookupError:
        pass


def _in_terminal_foreground() -> bool:
    try:
        return os.tcgetpgrp(sys.stdin.fileno()) == os.getpgrp()
    except (OSError, ValueError):
        return False  # no terminal


def main() -> int:
    commands = {"test": test, "demo": demo, "manage": manage, "lint": lint}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__)
        return 2
    bootstrap()
    return commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
