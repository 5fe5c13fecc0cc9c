"""Real processes for the metering tests: gateway servers, a Redis server, a Celery worker.

Each runs as its own OS process against the test database (its rows must be committed: use
``transactional_db``) and is stopped by the test that started it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2
from django.db import connection

from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]


def current_database_url() -> str:
    """The URL of the database pytest-django created (``test_gateway``, or the SQLite test file)."""
    settings = connection.settings_dict
    if settings["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{settings['NAME']}"
    password = f":{settings['PASSWORD']}" if settings["PASSWORD"] else ""
    host = f"{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}"
    return f"postgres://{settings['USER']}{password}@{host}/{settings['NAME']}"


def process_env(*, redis_url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": current_database_url(),
        "REDIS_URL": redis_url,
        **extra,
    }


class Process:
    """A child process, stopped with SIGTERM (then SIGKILL) when the test is done with it."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.log = tempfile.TemporaryFile()
        self.popen = subprocess.Popen(args, env=env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)


class GatewayProcess(Process):
    """``gateway.asgi:application`` on uvicorn, in its own process."""

    def __init__(self, *, redis_url: str, **env: str) -> None:
        self.port = free_port()
        super().__init__(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "gateway.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--lifespan",
                "on",
                "--log-level",
                "warning",
            ],
            process_env(redis_url=redis_url, **env),
        )

    def proxy_url(self, slug: str) -> str:
        return f"http://127.0.0.1:{self.port}/mcp/{slug}/"

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"gateway process exited: {self.output()}")
            try:
                if httpx2.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200:
                    return
            except httpx2.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("gateway process did not start")


class BusyProcesses:
    """``count`` processes spinning on the CPU, to starve the gateways' event loops; always stop them."""

    def __init__(self, count: int) -> None:
        spin = "while True:\n    pass\n"
        self.popens = [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(count)]

    def stop(self) -> None:
        for popen in self.popens:
            popen.kill()
        for popen in self.popens:
            popen.wait(10)


class RedisServer(Process):
    """A throw-away redis-server on its own port, which the test can stop and start again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.binary = shutil.which("redis-server")
        self.popen = None  # type: ignore[assignment]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        if self.binary is None:
            raise RuntimeError("redis-server is not installed")
        super().__init__(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            dict(os.environ),
        )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        import redis

        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
            finally:
                client.close()
        raise RuntimeError("redis-server did not start")


class CeleryWorker(Process):
    """``celery -A gateway worker`` consuming one queue of its own, with Redis as the broker."""

    def __init__(self, *, redis_url: str, queue: str) -> None:
        celery = str(Path(sys.executable).with_name("celery"))
        super().__init__(
            [
                celery,
                "-A",
                "gateway",
                "worker",
                "--pool",
                "solo",
                "--concurrency",
                "1",
                "-Q",
                queue,
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "WARNING",
            ],
            process_env(redis_url=redis_url, CELERY_BROKER_URL=redis_url),
        )
