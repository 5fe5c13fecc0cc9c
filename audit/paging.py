"""Paging a large audit list without counting it: the admin's paginator counts at most ``cap`` + 1
events, so a page of the newest events costs the same on a trail of a million as of a hundred."""

from __future__ import annotations

from typing import Any

from django.core.paginator import Paginator
from django.utils.functional import cached_property

COUNT_CAP = 10_000


class CappedCountPaginator(Paginator):
    """A paginator whose count stops at ``COUNT_CAP`` + 1: past that, ``capped`` is True and the list
    says "more than 10,000" (templates/admin/audit/auditevent/pagination.html); the pages beyond are
    reached by narrowing the period, not by paging."""

    cap = COUNT_CAP

    @cached_property
    def count(self) -> int:
        # SELECT COUNT(*) FROM (SELECT ... LIMIT cap + 1): stops reading at the cap.
        object_list: Any = self.object_list
        return int(object_list.order_by()[: self.cap + 1].count())

    @property
    def capped(self) -> bool:
        return self.count > self.cap
