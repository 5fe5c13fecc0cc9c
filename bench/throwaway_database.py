"""The database a benchmark measures in: its own, created for the run and dropped after it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def throwaway_database(label: str) -> Iterator[Any]:
    """Set Django up (on DATABASE_URL) with a database of this run's own, ``bench_<label>_<pid>`` on
    PostgreSQL or a temporary SQLite file, migrated; yield the connection; drop the database after."""
    import django
    from django.conf import settings

    settings.DATABASES["default"]["TEST"] = {"NAME": f"bench_{label}_{os.getpid()}"}
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        settings.DATABASES["default"]["TEST"]["NAME"] = str(Path(tempfile.mkdtemp()) / "bench.sqlite3")
    django.setup()
    from django.db import connection

    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        yield connection
    finally:
        connection.creation.destroy_test_db(name, verbosity=0)
