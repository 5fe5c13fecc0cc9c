"""Reading the events of an export: a tenant's events of a period, in id order, in constant memory.

One ordered query read in chunks (a server-side cursor on PostgreSQL, the SQLite cursor's own steps):
the database sorts the period's events once, and at most one page of rows is in Python's memory, however
many the period holds. (Keyset pages, ``id > last ORDER BY id LIMIT n``, cost a sort of the whole period
per page when the planner takes the (tenant, created_at) index.) :func:`export_snapshot` makes the
events, and the seals read after them, one snapshot.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.db import connection, transaction

from audit.canonical import EVENT_FIELDS
from audit.models import AuditEvent

PAGE_ROWS = 500
#: What each row read carries: the canonical columns, and the seal it is in (None: not sealed yet).
ROW_FIELDS = (*EVENT_FIELDS, "seal_id")


@contextmanager
def export_snapshot() -> Iterator[None]:
    """One read-only snapshot of the database for the block (PostgreSQL: a REPEATABLE READ transaction;
    SQLite: a transaction, whose reads see one snapshot in WAL mode)."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


def period_events(*, tenant_id: int, since: datetime, until: datetime) -> Any:
    """The queryset of the tenant's events with ``since <= created_at < until``."""
    return AuditEvent.objects.filter(tenant_id=tenant_id, created_at__gte=since, created_at__lt=until)


def iter_event_pages(
    *, tenant_id: int, since: datetime, until: datetime, page_rows: int = PAGE_ROWS
) -> Iterator[list[dict[str, Any]]]:
    """Pages of at most ``page_rows`` event rows (``ROW_FIELDS`` mappings), ids ascending.

    One query, read a chunk at a time (PostgreSQL: a server-side cursor), so the database sorts once
    and at most one page of rows is in memory; call it inside :func:`export_snapshot`.
    """
    query = period_events(tenant_id=tenant_id, since=since, until=until).order_by("id").values(*ROW_FIELDS)
    page: list[dict[str, Any]] = []
    for row in query.iterator(chunk_size=page_rows):
        page.append(row)
        if len(page) == page_rows:
            yield page
            page = []
    if page:
        yield page
