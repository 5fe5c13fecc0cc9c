"""``manage.py serve``: run the gateway on a production ASGI server."""

from __future__ import annotations

from collections.abc import Callable
from importlib.util import find_spec
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from gateway.metrics.multiprocess import prepare_directory, remove_directory

APPLICATION = "gateway.asgi:application"

# Uvicorn (on uvloop and httptools) is the default: of the three it spent the least gateway CPU per
# call and added the least latency in bench/RESULTS.md. All three stream text/event-stream chunk
# by chunk; uvicorn serves WebSockets once the ``websockets`` package is installed.
DEFAULT_SERVER = "uvicorn"

# Seconds a stopping server gives open requests (event streams included) before closing them.
SHUTDOWN_GRACE_SECONDS = 30

WITHOUT_REDIS = (
    "--workers {workers}: without Redis, limits and caches are per process; "
    "set REDIS_URL to run several workers."
)

# Server loggers go to the root logger, so they come out as JSON like the gateway's own lines.
_GRANIAN_LOGGERS = {
    "loggers": {
        "_granian": {"handlers": [], "level": "INFO", "propagate": True},
        "granian.access": {"handlers": [], "level": "INFO", "propagate": True},
    }
}


def run_granian(*, host: str, port: int, workers: int) -> None:
    """Granian (Rust HTTP core): ASGI with lifespan, WebSockets on, access log off."""
    from granian import Granian
    from granian.constants import Interfaces

    server = Granian(
        APPLICATION,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=workers,
        websockets=True,
        log_dictconfig=_GRANIAN_LOGGERS,
        workers_kill_timeout=SHUTDOWN_GRACE_SECONDS,
    )
    server.serve()


def run_uvicorn(*, host: str, port: int, workers: int) -> None:
    """Uvicorn: ASGI with lifespan, uvloop and httptools when installed, access log off.

    The client address is the TCP peer's: no X-Forwarded-For is trusted, as with the other servers.
    """
    import uvicorn

    uvicorn.run(
        APPLICATION,
        host=host,
        port=port,
        workers=workers,
        lifespan="on",
        access_log=False,
        log_config=None,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
    )


def run_daphne(*, host: str, port: int, workers: int) -> None:
    """Daphne (Twisted): one process, no ASGI lifespan (the proxy runtime starts on first use)."""
    from daphne.cli import CommandLineInterface

    CommandLineInterface().run(["--bind", host, "--port", str(port), "--verbosity", "0", APPLICATION])


RUNNERS: dict[str, Callable[..., None]] = {
    "granian": run_granian,
    "uvicorn": run_uvicorn,
    "daphne": run_daphne,
}


def uvicorn_serves_websockets() -> bool:
    """Uvicorn answers WebSocket upgrades only with one of these libraries installed."""
    return find_spec("websockets") is not None or find_spec("wsproto") is not None


class Command(BaseCommand):
    """Run ``gateway.asgi:application`` on uvicorn (default), granian or daphne.

    The Django system checks run first, so a misconfigured gateway fails here (exit status 1, the
    errors printed) rather than on its first request; then, with DEBUG off, the static files are
    collected for WhiteNoise. Several workers need Redis: without it, rate limits, meters and caches
    are kept per process and each worker would enforce its own. With several workers the Prometheus
    metrics are shared through a directory made for this start (or PROMETHEUS_MULTIPROC_DIR, emptied)
    so that one scrape counts every worker.
    """

    help = "Run the gateway on a production ASGI server (uvicorn, granian or daphne)."
    # The checks run explicitly in handle(), so they also run under call_command().
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="Address to bind (default 127.0.0.1).")
        parser.add_argument("--port", type=int, default=8000, help="Port to bind (default 8000).")
        parser.add_argument(
            "--workers", type=int, default=1, help="Worker processes (default 1; >1 needs REDIS_URL)."
        )
        parser.add_argument(
            "--server",
            choices=sorted(RUNNERS),
            default=DEFAULT_SERVER,
            help=f"ASGI server (default {DEFAULT_SERVER}).",
        )
        parser.add_argument(
            "--no-collectstatic",
            action="store_true",
            help="Do not collect static files at start-up (a build step already ran collectstatic).",
        )

    def handle(
        self,
        *args: Any,
        host: str,
        port: int,
        workers: int,
        server: str,
        no_collectstatic: bool = False,
        **options: Any,
    ) -> None:
        if not 0 < port < 65536:
            raise CommandError(f"--port must be between 1 and 65535, got {port}.")
        if workers < 1:
            raise CommandError(f"--workers must be at least 1, got {workers}.")
        if workers > 1 and not settings.REDIS_URL:
            raise CommandError(WITHOUT_REDIS.format(workers=workers))
        if workers > 1 and server == "daphne":
            raise CommandError(
                "daphne runs a single process: use --server granian or uvicorn for several workers."
            )
        self.check()  # raises SystemCheckError (exit 1, the errors printed) on any error
        if not settings.DEBUG and not no_collectstatic:
            self.collect_static_files()
        if server == "uvicorn" and not uvicorn_serves_websockets():
            self.stderr.write(
                self.style.WARNING("uvicorn will refuse WebSocket upgrades: install the websockets package.")
            )
        self.stderr.write(f"Serving the gateway with {server} on http://{host}:{port}/ ({workers} worker(s))")
        if workers == 1:
            RUNNERS[server](host=host, port=port, workers=workers)
            return
        # Several processes share their metrics through files (gateway/metrics/multiprocess.py); the
        # workers inherit the variable, set before any of them imports prometheus-client.
        directory, made_here = prepare_directory()
        try:
            RUNNERS[server](host=host, port=port, workers=workers)
        finally:
            if made_here:
                remove_directory(directory)

    def collect_static_files(self) -> None:
        """Collect the admin's static files into STATIC_ROOT for WhiteNoise.

        Collected rather than served from the apps (finders) because collectstatic gives each file a
        content-hashed name, which WhiteNoise serves with a year-long immutable cache header, and
        writes the gzip variants once instead of compressing per request. Files already collected
        are skipped, so a restart costs about a second.
        """
        try:
            call_command("collectstatic", interactive=False, verbosity=0)
        except OSError as exc:
            raise CommandError(
                f"Could not collect static files into STATIC_ROOT ({settings.STATIC_ROOT}): {exc}. "
                "Set STATIC_ROOT to a writable directory, or pass --no-collectstatic after running "
                "collectstatic in a build step."
            ) from exc
