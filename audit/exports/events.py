"""Reading the events of an export: a tenant's events of a period, in id order, in constant memory.

Keyset pagination on the primary key (``id > last ORDER BY id LIMIT n``): every page is one short
query, whatever the database and however many events the period holds, and at most one page of rows
is in memory. :func:`export_snapshot` makes the pages, and the seals read after them, one snapshot.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.db import connection, transaction

from audit.canonical import EVENT_FIELDS
from audit.models import AuditEvent

PAGE_ROWS = 1000
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
    """Pages of at most ``page_rows`` event rows (``ROW_FIELDS`` mappings), ids ascending."""
    query = period_events(tenant_id=tenant_id, since=since, until=until).order_by("id")
    last = 0
    while True:
        page = list(query.filter(id__gt=last).values(*ROW_FIELDS)[:page_rows])
        if not page:
            return
        yield page
        last = page[-1]["id"]
        if len(page) < page_rows:
            return
