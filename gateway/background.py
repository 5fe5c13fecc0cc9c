"""Database work done off the request path (audit writes, version polls, last-used flushes).

It runs on one dedicated worker thread per process, which keeps its database connection open
between jobs (reconnecting per job would cost more than the job) and drops it after a failure so
the next job reconnects. Jobs are marked by :data:`in_background`, so tests that count the queries
of a proxied call can tell them apart from the call's own.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any, TypeVar

from django.db import connections

T = TypeVar("T")

logger = logging.getLogger(__name__)

in_background: contextvars.ContextVar[bool] = contextvars.ContextVar("in_background", default=False)

_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gateway-background")


def _call(fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
    in_background.set(True)
    try:
        return fn(*args, **kwargs)
    except Exception:
        connections.close_all()  # the connection may be broken: the next job opens a fresh one
        raise


def close_background_connections() -> None:
    """Close the background thread's database connections (at shutdown, and before a test DB drop)."""
    _executor.submit(connections.close_all).result(timeout=30)


async def run_in_background_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run blocking ``fn`` on the background thread without holding the event loop."""
    return await run_on(_executor, fn, *args, **kwargs)


async def run_on(executor: Executor, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run blocking ``fn`` on ``executor`` (a job's own thread: one whose waits, such as a SIEM sink's
    network timeouts, must not hold up the audit writes of the shared background thread)."""
    context = contextvars.copy_context()
    job = functools.partial(context.run, _call, fn, args, kwargs)
    return await asyncio.get_running_loop().run_in_executor(executor, job)


async def run_every(
    interval: float, job: Callable[[], object], what: str, *, executor: Executor | None = None
) -> None:
    """Run blocking ``job`` on the background thread (or ``executor``) every ``interval`` seconds, until
    cancelled.

    A failed run (database away ...) is logged as ``what`` failed, and the next run tries again: one
    bad run never stops the loop. Cancelling waits for a run already in flight to finish (a thread
    cannot be stopped), so neither a shutdown nor a test's table flush races a job still writing.
    """
    while True:
        await asyncio.sleep(interval)
        run = asyncio.ensure_future(run_on(executor or _executor, job))
        try:
            await asyncio.shield(run)
        except asyncio.CancelledError:
            await asyncio.gather(run, return_exceptions=True)
            raise
        except Exception as exc:
            logger.warning("%s failed: %s", what, type(exc).__name__)
