"""Metrics shared by several worker processes (``serve --workers N``).

prometheus-client's multiprocess mode: every process writes its values into memory-mapped files in
``PROMETHEUS_MULTIPROC_DIR`` (one per process and metric kind), and a scrape, answered by whichever
worker the connection reaches, sums the counters and histograms of every process, dead ones included
(a total must not drop when a worker restarts) and takes the gauges of live ones only. The client
library reads the variable when it is first imported, so ``serve`` sets it before the workers start
(:func:`prepare_directory`); one process alone keeps the values in memory and needs none of this.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
_LIVE_GAUGE_FILE = re.compile(r"^gauge_live\w+?_(\d+)\.db$")


def multiprocess_directory() -> str:
    """The shared directory of this process's metrics, or "" when they are kept in memory."""
    return os.environ.get(VARIABLE, "")


def prepare_directory() -> tuple[str, bool]:
    """Point ``PROMETHEUS_MULTIPROC_DIR`` at an empty directory for this start; returns it and whether
    it was made here (to be removed at exit). A directory the operator set is kept, but its files of
    an earlier start are removed: counters start from zero with the processes, as Prometheus expects.
    """
    configured = multiprocess_directory()
    if configured:
        directory = Path(configured)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
        return str(directory), False
    made = tempfile.mkdtemp(prefix="gateway-metrics-")
    os.environ[VARIABLE] = made
    return made, True


def remove_directory(directory: str) -> None:
    """Remove a directory :func:`prepare_directory` made, once the workers are gone."""
    shutil.rmtree(directory, ignore_errors=True)
    if os.environ.get(VARIABLE) == directory:
        del os.environ[VARIABLE]


def forget_dead_processes(directory: str) -> None:
    """Drop the live-gauge files of processes that have exited (a worker that died and was replaced):
    their audit lag and cache age no longer describe anything."""
    pids = {int(m.group(1)) for name in os.listdir(directory) if (m := _LIVE_GAUGE_FILE.match(name))}
    for pid in pids:
        if not _alive(pid):
            forget_process(pid, directory)


def forget_process(pid: int, directory: str) -> None:
    """Remove process ``pid``'s live gauges (its counters stay: totals never drop)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
