"""Count the database queries a proxied call makes, across every thread, ignoring background work."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db.backends.utils import CursorWrapper

from gateway.background import in_background


class QueryLog:
    def __init__(self) -> None:
        self.statements: list[str] = []
        self._lock = threading.Lock()

    def add(self, sql: str) -> None:
        with self._lock:
            self.statements.append(sql)


@contextmanager
def count_request_queries() -> Iterator[QueryLog]:
    """Record every SQL statement run outside background tasks while the block runs."""
    log = QueryLog()
    original = CursorWrapper._execute_with_wrappers

    def counting(self: CursorWrapper, sql: str, *args: Any, **kwargs: Any) -> Any:
        if not in_background.get():
            log.add(sql)
        return original(self, sql, *args, **kwargs)

    CursorWrapper._execute_with_wrappers = counting  # type: ignore[method-assign]
    try:
        yield log
    finally:
        CursorWrapper._execute_with_wrappers = original  # type: ignore[method-assign]
