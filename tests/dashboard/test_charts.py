"""The dashboard's SVG charts: round axes, readable figures, an empty state, and names escaped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dashboard.charts import (
    Bar,
    Gauge,
    Range,
    Series,
    bar_chart,
    gauge_chart,
    nice_ceiling,
    number,
    range_chart,
    time_chart,
)

HOSTILE = '"><script>alert(1)</script>'


@pytest.mark.parametrize(
    ("value", "top", "step"),
    [
        (0, 1.0, 0.25),
        (7, 8, 2),
        (13, 15, 5),
        (97, 100, 25),
        (1234, 1500, 500),
        (0.3, 0.3, 0.1),
        (0.31, 0.4, 0.1),
    ],
)
def test_the_value_axis_ends_on_a_round_number(value: float, top: float, step: float) -> None:
    assert nice_ceiling(value) == pytest.approx((top, step))


@pytest.mark.parametrize(
    ("value", "text"),
    [(5, "5"), (1234, "1,234"), (12.5, "12.5"), (0.25, "0.25"), (15300, "15.3k"), (20000, "20k")],
)
def test_figures_read_as_people_write_them(value: float, text: str) -> None:
    assert number(value) == text


def test_a_period_without_calls_says_so_instead_of_drawing_an_empty_grid() -> None:
    buckets = [datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=i) for i in range(3)]

    svg = time_chart(
        buckets=buckets, series=[Series("calls", (0, 0, 0), "calls")], label="x", time_format="%H:%M"
    )

    assert "No calls in this period" in svg and "<polyline" not in svg


def test_the_time_chart_draws_the_first_series_filled_and_every_bucket_with_its_figures() -> None:
    buckets = [datetime(2026, 1, 1, 9, tzinfo=UTC) + timedelta(minutes=i) for i in range(3)]
    series = [Series("calls", (4, 8, 2), "calls"), Series("denied", (1, 0, 2), "denials")]

    svg = time_chart(buckets=buckets, series=series, label="Calls", time_format="%H:%M")

    assert svg.count("<polygon") == 1 and svg.count("<polyline") == 2
    assert "<title>09:01: calls 8, denied 0</title>" in svg
    assert 'viewBox="0 0 760 240"' in svg and 'aria-label="Calls"' in svg


def test_names_are_escaped_in_every_chart() -> None:
    charts = [
        bar_chart(bars=[Bar(HOSTILE, 3, HOSTILE)], label=HOSTILE),
        range_chart(ranges=[Range(HOSTILE, 1.0, 2.0, 3)], label=HOSTILE),
        gauge_chart(gauges=[Gauge(HOSTILE, 1.0, 2.0, HOSTILE)], label=HOSTILE),
    ]

    for svg in charts:
        assert "<script>" not in svg
        assert "&lt;script&gt;" in svg


def test_a_gauge_turns_amber_then_red_as_the_meter_fills() -> None:
    svg = gauge_chart(
        gauges=[Gauge("a", 5, 10), Gauge("b", 8, 10), Gauge("c", 9.5, 10), Gauge("d", None, 10)], label="m"
    )

    levels = [svg.index(f'class="gauge {level}"') for level in ("ok", "warn", "high", "unknown")]
    assert levels == sorted(levels)
    assert "use unknown" in svg
