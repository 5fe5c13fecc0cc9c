"""The audit list's filters in the admin: a period (since / until), and text inputs for the credential's
name, the tool and the reason.

They stay fast on a large trail: none of them lists the distinct values of an event column (that would
read every event to draw the sidebar); they take what the reviewer types, and the narrowing itself is
audit/selectors.py ``audit_events_filtered``, which the indexes of ``AuditEvent.Meta`` serve. A value
that cannot be read (a period that is not a date) shows an error and lists no event, rather than
quietly listing more than was asked for.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any, ClassVar

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from audit.selectors import audit_events_filtered

# The period links above the inputs: (label, how far back from now).
RECENT_PERIODS = [
    ("Last hour", timedelta(hours=1)),
    ("Last 24 hours", timedelta(days=1)),
    ("Last 7 days", timedelta(days=7)),
    ("Last 30 days", timedelta(days=30)),
]
MAX_TEXT_LENGTH = 500  # the longest column a text filter reads (reason, tool)


class InvalidFilterValue(ValueError):
    """A filter value that cannot be read; the message says which and what is expected."""


def parse_moment(value: str, *, end_of_day: bool) -> datetime:
    """``YYYY-MM-DD`` (the start of that day, or with ``end_of_day`` the start of the next, so an
    "until" date includes the day) or ``YYYY-MM-DDTHH:MM[:SS]``, in the current time zone unless the
    value names one. Raises InvalidFilterValue."""
    text = value.strip()
    try:
        # The date first: Python's fromisoformat, which parse_datetime tries, reads a date as midnight.
        day = parse_date(text)
        moment = None if day else parse_datetime(text)
    except ValueError:  # well-formed but impossible, e.g. 2026-02-30
        moment = day = None
    if moment is None and day is not None:
        moment = datetime.combine(day + timedelta(days=1) if end_of_day else day, time())
    if moment is None:
        raise InvalidFilterValue(f"'{text[:40]}' is not a date (YYYY-MM-DD) or a time (YYYY-MM-DDTHH:MM)")
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


def other_parameters(changelist: ChangeList, own: list[str]) -> list[tuple[str, str]]:
    """The list's other query parameters, as hidden inputs of a filter's form, so that submitting it
    keeps the other filters, the search and the ordering."""
    params: dict[str, str] = changelist.params  # the last value of each (Django's ChangeList)
    return [(name, value) for name, value in params.items() if name not in own]


class PeriodFilter(admin.ListFilter):
    """Events from ``since`` (inclusive) until ``until`` (exclusive; a date includes that day), with
    links for the last hour, day, week and month."""

    title = "period"
    template = "admin/audit/period_filter.html"
    parameters: ClassVar[list[str]] = ["since", "until"]

    def __init__(
        self, request: HttpRequest, params: dict[str, Any], model: type[Model], model_admin: Any
    ) -> None:
        super().__init__(request, params, model, model_admin)
        for name in self.parameters:
            if name in params:
                self.used_parameters[name] = params.pop(name)[-1]

    def has_output(self) -> bool:
        return True

    def expected_parameters(self) -> list[str]:
        return list(self.parameters)

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        since, until = self.used_parameters.get("since", ""), self.used_parameters.get("until", "")
        try:
            bounds = {
                "since": parse_moment(since, end_of_day=False) if since.strip() else None,
                "until": parse_moment(until, end_of_day=True) if until.strip() else None,
            }
        except InvalidFilterValue as error:
            messages.error(request, f"Period: {error}.")
            return queryset.none()
        return audit_events_filtered(queryset, **bounds)

    def choices(self, changelist: ChangeList) -> list[dict[str, Any]]:
        """One entry for "any time", one per recent period, and the form (as the last entry)."""
        now = timezone.localtime()
        since, until = self.used_parameters.get("since", ""), self.used_parameters.get("until", "")
        entries = [
            {
                "selected": not since and not until,
                "query_string": changelist.get_query_string(remove=self.parameters),
                "display": "Any time",
            }
        ]
        for label, back in RECENT_PERIODS:
            start = (now - back).strftime("%Y-%m-%dT%H:%M")
            entries.append(
                {
                    "selected": False,
                    "query_string": changelist.get_query_string({"since": start}, remove=["until"]),
                    "display": label,
                }
            )
        form = {"since": since, "until": until, "hidden": other_parameters(changelist, self.parameters)}
        return [*entries, {"form": form}]


class TextInputFilter(admin.SimpleListFilter):
    """A filter the reviewer types a value into; ``field`` names the criterion of
    ``audit_events_filtered`` it sets."""

    template = "admin/audit/input_filter.html"
    field: ClassVar[str]
    hint: ClassVar[str] = ""

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return []

    def has_output(self) -> bool:
        return True

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = (self.value() or "").strip()
        if not value:
            return queryset
        if len(value) > MAX_TEXT_LENGTH:
            messages.error(request, f"{self.title.capitalize()}: at most {MAX_TEXT_LENGTH} characters.")
            return queryset.none()
        return audit_events_filtered(queryset, **{self.field: value})

    def choices(self, changelist: ChangeList) -> list[dict[str, Any]]:
        name = str(self.parameter_name)
        return [
            {
                "form": {
                    "name": name,
                    "value": self.value() or "",
                    "hint": self.hint,
                    "hidden": other_parameters(changelist, [name]),
                    "clear": changelist.get_query_string(remove=[name]),
                }
            }
        ]


class CredentialNameFilter(TextInputFilter):
    """The credential's name as it was at call time: a deactivated or deleted credential is found too."""

    title = "credential name"
    parameter_name = "credential_name"
    field = "credential_name"
    hint = "exact name"


class ToolFilter(TextInputFilter):
    title = "tool"
    parameter_name = "tool"
    field = "tool"
    hint = "exact tool name"


class ReasonFilter(TextInputFilter):
    title = "reason"
    parameter_name = "reason"
    field = "reason"
    hint = "part of the reason"


AUDIT_EVENT_FILTERS: list[Any] = [
    PeriodFilter,
    "tenant",
    "target",
    CredentialNameFilter,
    ToolFilter,
    "decision",
    ReasonFilter,
    "kind",
]
"""The audit list's filters, in the sidebar's order (AuditEventAdmin.list_filter)."""
