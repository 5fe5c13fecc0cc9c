"""Reads of the SIEM streaming: each sink with where its delivery stands (never its secret)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Q

from audit.models import AuditEvent, SiemSink, SiemSinkState
from audit.siem.cursor import Hole, holes_from_json


def siem_sink_list(*, tenant_id: int | None = None) -> list[dict[str, Any]]:
    """Every sink (of ``tenant_id`` if given), tenants and names in order, with its delivery state."""
    sinks = SiemSink.objects.select_related("tenant").order_by("tenant__name", "name")
    if tenant_id is not None:
        sinks = sinks.filter(tenant_id=tenant_id)
    states = {state.pk: state for state in SiemSinkState.objects.filter(sink__in=sinks)}
    return [siem_sink_summary(sink, states.get(sink.pk)) for sink in sinks]


def siem_sink_summary(sink: SiemSink, state: SiemSinkState | None) -> dict[str, Any]:
    """What an operator sees of a sink: its settings, whether a secret is set, and its delivery."""
    summary: dict[str, Any] = {
        "id": sink.pk,
        "tenant": sink.tenant.name,
        "name": sink.name,
        "kind": sink.kind,
        "enabled": sink.enabled,
        "settings": sink.settings,
        "has_secret": sink.has_secret,
    }
    fields = ("cursor", "backlog", "delivered", "failures", "last_error")
    times = ("last_success_at", "last_attempt_at", "next_attempt_at")
    summary.update({name: getattr(state, name) if state else None for name in fields + times})
    return summary


@dataclass(frozen=True, slots=True)
class SinkDeliveries:
    """Where each enabled sink of one tenant stands: retention asks it whether a sealed range of events
    has reached every sink (at-least-once delivery: a sink that fell behind loses nothing)."""

    sinks: tuple[tuple[str, int, tuple[Hole, ...]], ...]  # (name, cursor, holes still watched)

    def first_owing(self, *, first_event_id: int, last_event_id: int) -> str | None:
        """The name of a sink that may not have received every event with an id in the range."""
        for name, cursor, holes in self.sinks:
            if last_event_id > cursor:
                return name
            overlapping = [
                hole for hole in holes if hole.low <= last_event_id and hole.high >= first_event_id
            ]
            if overlapping and _events_in(overlapping, first_event_id, last_event_id):
                return name
        return None


def siem_deliveries(*, tenant_id: int) -> SinkDeliveries:
    sinks = SiemSink.objects.filter(tenant_id=tenant_id, enabled=True).select_related("state")
    rows = []
    for sink in sinks.order_by("pk"):
        state = getattr(sink, "state", None)
        holes = tuple(holes_from_json(state.holes)) if state is not None else ()
        rows.append((sink.name, state.cursor if state is not None else 0, holes))
    return SinkDeliveries(sinks=tuple(rows))


def _events_in(holes: list[Hole], low: int, high: int) -> bool:
    """Whether any event with an id in [low, high] lies in one of ``holes`` (an event committed after
    the sink passed its id)."""
    ranges = Q()
    for hole in holes:
        ranges |= Q(id__gte=max(hole.low, low), id__lte=min(hole.high, high))
    return AuditEvent.objects.filter(ranges).exists()
