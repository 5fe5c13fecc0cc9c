"""Cursor pagination for every list: stable under inserts, no page count to compute."""

from __future__ import annotations

from rest_framework.pagination import CursorPagination


class IdCursorPagination(CursorPagination):
    """Pages of ``page_size`` (default 50, at most 500) rows, newest id first unless the view says."""

    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
