"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio
from typing import Any

from django.db import connection
from django.http import HttpRequest, JsonResponse

from gateway.background import run_in_background_thread
from gateway.checks import configuration_problems
from gateway.conf import gateway_settings
from gateway.proxy.runtime import runtime_for_loop
from gateway.redis_client import RedisTimeBudget, async_redis


async def healthz(request: HttpRequest) -> JsonResponse:
    """Alive: the process answers."""
    return JsonResponse({"status": "ok"})


def _database_ok() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


async def readyz(request: HttpRequest) -> JsonResponse:
    """Ready: the configuration is valid, the database answers, and Redis too when it is configured.

    An invalid configuration (the errors ``manage.py check`` reports: SECRET_KEY, encryption keys,
    ALLOWED_HOSTS, GATEWAY_* values) makes it 503 naming the failed check, never a secret.
    """
    problems = configuration_problems()
    checks: dict[str, str] = {"configuration": "invalid: " + "; ".join(problems) if problems else "ok"}
    try:
        await run_in_background_thread(_database_ok)
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unavailable ({type(exc).__name__})"
    # Bounded by Redis time, as the meters are: a busy CPU must not make the probe report Redis down.
    client = async_redis(blocking_reads=True)
    if client is not None:
        try:
            async with RedisTimeBudget(gateway_settings().redis_timeout_seconds):
                await client.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"unavailable ({type(exc).__name__})"
        finally:
            await client.aclose()
    ready = all(value == "ok" for value in checks.values())
    body: dict[str, Any] = {"status": "ok" if ready else "unavailable", "checks": checks}
    runtime = runtime_for_loop(asyncio.get_running_loop())
    if runtime is not None:
        body["details"] = runtime.status()
    return JsonResponse(body, status=200 if ready else 503)
