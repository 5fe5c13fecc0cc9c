"""Server-rendered SVG charts for the dashboard: a time chart (a filled area and lines), horizontal
bars, latency ranges and meter gauges.

Each function returns one ``<svg>`` element as safe markup: every label is escaped here (tool and
credential names come from agents and admins), numbers are formatted here, and the picture scales
with its container (``viewBox``, no fixed pixel size). Colours come from CSS classes
(``static/dashboard/dashboard.css``), so the charts follow the page's light or dark scheme. A
``<title>`` on each bar and time bucket gives the exact figure on hover.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

# Room around a time chart's plot area for the axis labels.
_LEFT, _RIGHT, _TOP, _BOTTOM = 48, 12, 12, 28
_BAR_HEIGHT, _BAR_GAP = 18, 8
_X_LABELS = 6
_VALUE_ROOM = 130  # right of the longest bar: its value and note

Scale = Callable[[float], float]


@dataclass(frozen=True, slots=True)
class Series:
    """One line of a time chart: ``values`` has one number per bucket; ``css`` names its colour
    (``calls``, ``denials``, ``limited``, ``redactions``); the first series is drawn filled."""

    name: str
    values: tuple[float, ...]
    css: str


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: float
    note: str = ""  # shown after the value, e.g. "3 denied"


@dataclass(frozen=True, slots=True)
class Range:
    """Latency of one target: the median and the 95th percentile, in milliseconds."""

    label: str
    p50: float
    p95: float
    calls: int


@dataclass(frozen=True, slots=True)
class Gauge:
    """How much of one meter's limit is used; ``used`` None when the counters cannot be read."""

    label: str
    used: float | None
    limit: float
    note: str = ""


def nice_ceiling(value: float, steps: int = 4) -> tuple[float, float]:
    """The axis top (a round number at or above ``value``) and its tick step (1, 2 or 5 x 10^n)."""
    if value <= 0:
        return 1.0, 0.25 if steps == 4 else 1.0 / steps
    raw = value / steps
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return step * math.ceil(value / step - 1e-9), step


def number(value: float) -> str:
    """``1234`` as ``1,234``, ``12.5`` as ``12.5``, ``15300`` as ``15.3k`` past ten thousand."""
    if abs(value) >= 10_000:
        return f"{value / 1000:,.1f}k".replace(".0k", "k")
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}" if abs(value) >= 10 else f"{value:,.2f}".rstrip("0").rstrip(".")


def _html(template: str, *args: object) -> SafeString:
    """``format_html`` (every argument escaped) with floats written to one decimal place."""
    return format_html(template, *(f"{arg:.1f}" if isinstance(arg, float) else arg for arg in args))


def _svg(width: int, height: int, label: str, body: str) -> SafeString:
    return _html(
        '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-label="{}" '
        'xmlns="http://www.w3.org/2000/svg"><title>{}</title>{}</svg>',
        width,
        height,
        label,
        label,
        mark_safe(body),  # noqa: S308  (built below from escaped parts only)
    )


def _empty(width: int, height: int, label: str, message: str) -> SafeString:
    text = _html(
        '<text class="empty" x="{}" y="{}" text-anchor="middle">{}</text>', width / 2, height / 2, message
    )
    return _svg(width, height, label, text)


def time_chart(
    *,
    buckets: Sequence[datetime],
    series: Sequence[Series],
    label: str,
    time_format: str,
    width: int = 760,
    height: int = 240,
) -> SafeString:
    """Calls over time as a filled area, the other series as lines over it, with axes and a grid."""
    if not buckets or not any(any(s.values) for s in series):
        return _empty(width, height, label, "No calls in this period")
    top, step = nice_ceiling(max(max(s.values) for s in series))
    plot_w, plot_h = width - _LEFT - _RIGHT, height - _TOP - _BOTTOM
    count = len(buckets)

    def x(index: float) -> float:
        return _LEFT + (plot_w * index / (count - 1) if count > 1 else plot_w / 2)

    def y(value: float) -> float:
        return _TOP + plot_h * (1 - value / top)

    parts = [_y_grid(top, step, y, width)]
    parts.append(_x_labels(buckets, time_format, x, height))
    for index, one in enumerate(series):
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(one.values))
        if index == 0:
            area = f"{x(0):.1f},{y(0):.1f} {points} {x(count - 1):.1f},{y(0):.1f}"
            parts.append(_html('<polygon class="area {}" points="{}"/>', one.css, area))
        parts.append(_html('<polyline class="line {}" points="{}"/>', one.css, points))
    parts.append(_hover_columns(buckets, series, time_format, x, plot_w, plot_h))
    return _svg(width, height, label, "".join(parts))


def _y_grid(top: float, step: float, y: Scale, width: int) -> str:
    lines = []
    ticks = round(top / step)
    for tick in range(ticks + 1):
        value = step * tick
        at = y(value)
        lines.append(
            _html(
                '<line class="grid" x1="{}" x2="{}" y1="{}" y2="{}"/>'
                '<text class="axis" x="{}" y="{}" text-anchor="end">{}</text>',
                _LEFT,
                width - _RIGHT,
                at,
                at,
                _LEFT - 6,
                at + 4,
                number(value),
            )
        )
    return "".join(lines)


def _x_labels(buckets: Sequence[datetime], time_format: str, x: Scale, height: int) -> str:
    count = len(buckets)
    every = max(1, math.ceil(count / _X_LABELS))
    labels = []
    for index in range(0, count, every):
        anchor = "start" if index == 0 else "middle"
        labels.append(
            _html(
                '<text class="axis" x="{}" y="{}" text-anchor="{}">{}</text>',
                x(index),
                height - 8,
                anchor,
                buckets[index].strftime(time_format),
            )
        )
    return "".join(labels)


def _hover_columns(
    buckets: Sequence[datetime],
    series: Sequence[Series],
    time_format: str,
    x: Scale,
    plot_w: float,
    plot_h: float,
) -> str:
    """Invisible columns, one per bucket, whose ``<title>`` gives the bucket's figures on hover."""
    column = plot_w / max(len(buckets), 1)
    cells = []
    for index, bucket in enumerate(buckets):
        figures = ", ".join(f"{s.name} {number(s.values[index])}" for s in series)
        cells.append(
            _html(
                '<rect class="hover" x="{}" y="{}" width="{}" height="{}"><title>{}: {}</title></rect>',
                x(index) - column / 2,
                _TOP,
                column,
                plot_h,
                bucket.strftime(time_format),
                figures,
            )
        )
    return "".join(cells)


def bar_chart(*, bars: Sequence[Bar], label: str, css: str = "calls", width: int = 380) -> SafeString:
    """Horizontal bars, longest first as given, each with its label above and its value at the end."""
    if not bars:
        return _empty(width, 80, label, "Nothing in this period")
    top = max(bar.value for bar in bars) or 1
    row = _BAR_HEIGHT + _BAR_GAP + 14
    rows = []
    for index, bar in enumerate(bars):
        at = index * row
        length = max((width - _VALUE_ROOM) * bar.value / top, 2)
        value_text = number(bar.value) + (f" · {bar.note}" if bar.note else "")
        rows.append(
            _html(
                '<g><title>{}: {}</title><text class="label" x="0" y="{}">{}</text>'
                '<rect class="bar {}" x="0" y="{}" width="{}" height="{}" rx="3"/>'
                '<text class="value" x="{}" y="{}">{}</text></g>',
                bar.label,
                value_text,
                at + 12,
                _shorten(bar.label, 52),
                css,
                at + 16,
                length,
                _BAR_HEIGHT,
                length + 6,
                at + 16 + _BAR_HEIGHT - 5,
                value_text,
            )
        )
    return _svg(width, len(bars) * row, label, "".join(rows))


def range_chart(*, ranges: Sequence[Range], label: str, width: int = 380) -> SafeString:
    """Per target, a bar to the 95th percentile with the median marked inside it, on one scale."""
    if not ranges:
        return _empty(width, 80, label, "No forwarded calls in this period")
    top, _ = nice_ceiling(max(r.p95 for r in ranges))
    scale = (width - _VALUE_ROOM - 30) / top
    row = _BAR_HEIGHT + _BAR_GAP + 14
    rows = []
    for index, item in enumerate(ranges):
        at = index * row
        rows.append(
            _html(
                "<g><title>{}: p50 {} ms, p95 {} ms over {} calls</title>"
                '<text class="label" x="0" y="{}">{}</text>'
                '<rect class="bar p95" x="0" y="{}" width="{}" height="{}" rx="3"/>'
                '<rect class="bar p50" x="0" y="{}" width="{}" height="{}" rx="3"/>'
                '<text class="value" x="{}" y="{}">p50 {} · p95 {} ms</text></g>',
                item.label,
                number(item.p50),
                number(item.p95),
                item.calls,
                at + 12,
                _shorten(item.label, 52),
                at + 16,
                max(item.p95 * scale, 2),
                _BAR_HEIGHT,
                at + 16,
                max(item.p50 * scale, 2),
                _BAR_HEIGHT,
                max(item.p95 * scale, 2) + 6,
                at + 16 + _BAR_HEIGHT - 5,
                number(item.p50),
                number(item.p95),
            )
        )
    return _svg(width, len(ranges) * row, label, "".join(rows))


def gauge_chart(*, gauges: Sequence[Gauge], label: str, width: int = 380) -> SafeString:
    """Each meter as a track filled to its share of the limit: green, amber past 75 %, red past 90 %."""
    if not gauges:
        return _empty(width, 80, label, "No meters on this tenant")
    row = _BAR_HEIGHT + _BAR_GAP + 14
    track = width - _VALUE_ROOM
    rows = []
    for index, gauge in enumerate(gauges):
        at = index * row
        share = None if gauge.used is None else (gauge.used / gauge.limit if gauge.limit else 1.0)
        level = "unknown" if share is None else "high" if share >= 0.9 else "warn" if share >= 0.75 else "ok"
        text = (
            "use unknown"
            if share is None
            else f"{number(gauge.used or 0)} / {number(gauge.limit)} ({min(share, 9.99):.0%})"
        )
        rows.append(
            _html(
                '<g><title>{}: {}{}</title><text class="label" x="0" y="{}">{}</text>'
                '<rect class="track" x="0" y="{}" width="{}" height="{}" rx="3"/>'
                '<rect class="gauge {}" x="0" y="{}" width="{}" height="{}" rx="3"/>'
                '<text class="value" x="{}" y="{}">{}</text></g>',
                gauge.label,
                text,
                f" ({gauge.note})" if gauge.note else "",
                at + 12,
                _shorten(gauge.label, 52),
                at + 16,
                track,
                _BAR_HEIGHT,
                level,
                at + 16,
                track * min(share or 0, 1.0),
                _BAR_HEIGHT,
                track + 6,
                at + 16 + _BAR_HEIGHT - 5,
                text,
            )
        )
    return _svg(width, len(gauges) * row, label, "".join(rows))


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
