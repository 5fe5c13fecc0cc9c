"""The PDF summary of an export, drawn with reportlab: page 1 holds the period, the totals and the chart
of calls per day; then the per-agent and per-tool tables, denials, rate-limit hits, redactions, the
credential lifecycle, policy changes and the control mapping (audit/exports/controls.py).

Every text taken from events (agent, tool and target names, reasons, actors) is untrusted: it is
escaped for reportlab's paragraph markup and invisible characters are shown as escapes.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.shapes import Drawing, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from audit.canonical import canonical_time
from audit.exports.controls import CONTROL_MAPPINGS
from audit.exports.summary import ExportSummary, day_label
from policies.tools import escape_invisible

#: The colour of the chart's bars (the tests look for it on page 1).
CHART_COLOUR = colors.HexColor("#d9480f")
DENIED_COLOUR = colors.HexColor("#1c7ed6")
_HEADER = colors.HexColor("#e9ecef")
_WIDTH = A4[0] - 30 * mm

_styles = getSampleStyleSheet()
_BODY = _styles["BodyText"]
_SMALL = ParagraphStyle("small", parent=_BODY, fontSize=7.5, leading=9)
_H1, _H2 = _styles["Title"], _styles["Heading2"]


def render_summary_pdf(summary: ExportSummary, path: Path, *, now: datetime) -> None:
    """Write the summary's PDF to ``path``."""
    scope = summary.scope
    document = SimpleDocTemplate(
        str(path),
        pagesize=A4,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=15 * mm,
        bottomMargin=15 * mm,
        title=f"Audit summary: {scope.tenant_name}",
        author="MCP gateway",
        invariant=1,  # no random document id: the same summary gives the same bytes
    )
    story: list[Flowable] = [
        Paragraph(f"Audit summary: {_text(scope.tenant_name)}", _H1),
        Paragraph(
            f"Period {canonical_time(scope.since)} (included) to {canonical_time(scope.until)} (excluded), "
            f"UTC. Generated {canonical_time(now)}.",
            _BODY,
        ),
        Spacer(1, 4 * mm),
        _totals_table(summary),
        Spacer(1, 4 * mm),
        Paragraph("Calls per day", _H2),
        calls_chart(summary),
        Paragraph(
            "Integrity: this file's SHA-256, the audit seals covering the period and the gateway's "
            "signature are in the manifest beside it; <i>manage.py verify_export</i> checks them offline "
            "with the public key published at /.well-known/audit-keys.",
            _SMALL,
        ),
    ]
    story += _section(
        "Calls per agent (credential)", _agent_rows(summary), [0.34, 0.14, 0.1, 0.1, 0.1, 0.12, 0.1]
    )
    story += _section("Calls per tool", _tool_rows(summary), [0.2, 0.4, 0.1, 0.1, 0.1, 0.1])
    story += _section("Denials by reason", _pairs("reason", summary.denials_by_reason), [0.85, 0.15])
    story += _section(
        "Rate-limit hits (429) by agent", _pairs("agent", summary.rate_limited_by_agent), [0.85, 0.15]
    )
    story += _section("Redactions by kind", _pairs("kind", summary.redactions_by_kind), [0.85, 0.15])
    story.append(Paragraph(f"Items removed by response filters: {summary.filtered_items}", _BODY))
    story += _section("Credential lifecycle", _lifecycle_rows(summary), [0.2, 0.14, 0.3, 0.24, 0.12])
    story += _section(
        "Policy and configuration changes", _change_rows(summary), [0.18, 0.09, 0.33, 0.22, 0.18]
    )
    if summary.more_changes:
        story.append(
            Paragraph(f"{summary.more_changes} more change(s): see the CSV or JSON Lines export.", _SMALL)
        )
    story += _section("Control mapping", _control_rows(), [0.3, 0.18, 0.12, 0.13, 0.15, 0.12])
    story.append(
        Paragraph(
            "SOC 2: AICPA Trust Services Criteria. ISO/IEC 27001:2022 Annex A. HIPAA: 45 CFR Part 164. "
            "GDPR: Regulation (EU) 2016/679. A mapping names the controls this evidence supports; whether "
            "a control is met is the assessor's judgement of the whole system.",
            _SMALL,
        )
    )
    document.build(story)


def calls_chart(summary: ExportSummary) -> Drawing:
    """Bars of calls per day (and denials beside them), or a note when there were no calls."""
    drawing = Drawing(_WIDTH, 70 * mm)
    days = summary.calls_per_day
    if not days:
        drawing.add(String(10, 30 * mm, "No calls in this period.", fontSize=10))
        return drawing
    chart = VerticalBarChart()
    chart.x, chart.y, chart.width, chart.height = 12 * mm, 12 * mm, _WIDTH - 20 * mm, 52 * mm
    chart.data = [[calls for _, calls, _ in days], [denied for _, _, denied in days]]
    chart.bars[0].fillColor = CHART_COLOUR
    chart.bars[1].fillColor = DENIED_COLOUR
    chart.bars.strokeWidth = 0
    step = max(1, len(days) // 15)
    chart.categoryAxis.categoryNames = [
        day_label(day) if i % step == 0 else "" for i, (day, _, _) in enumerate(days)
    ]
    chart.categoryAxis.labels.fontSize = 6
    chart.valueAxis.valueMin = 0
    chart.valueAxis.labels.fontSize = 7
    drawing.add(chart)
    drawing.add(String(12 * mm, 66 * mm, "calls", fontSize=7, fillColor=CHART_COLOUR))
    drawing.add(String(24 * mm, 66 * mm, "denied", fontSize=7, fillColor=DENIED_COLOUR))
    return drawing


def _text(value: Any) -> str:
    return escape(escape_invisible(str(value)))


def _cell(value: Any) -> Paragraph:
    return Paragraph(_text(value), _SMALL)


def _section(title: str, rows: list[list[Any]], widths: list[float]) -> list[Flowable]:
    if len(rows) == 1:
        return [Paragraph(title, _H2), Paragraph("None in this period.", _BODY)]
    table = Table(
        [[_cell(value) for value in row] for row in rows],
        colWidths=[_WIDTH * share for share in widths],
        repeatRows=1,
    )
    table.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, 0), _HEADER),
                ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    return [Paragraph(title, _H2), table]


def _totals_table(summary: ExportSummary) -> Table:
    totals = summary.totals
    rows = [
        ["events", "calls", "allowed", "denied", "errors", "rate-limited", "agents", "changes"],
        [
            totals[name]
            for name in (
                "events",
                "calls",
                "allowed",
                "denied",
                "errors",
                "rate_limited",
                "agents",
                "changes",
            )
        ],
    ]
    table = Table(rows, colWidths=[_WIDTH / 8] * 8)
    table.setStyle(
        TableStyle([("BACKGROUND", (0, 0), (-1, 0), _HEADER), ("GRID", (0, 0), (-1, -1), 0.25, colors.grey)])
    )
    return table


def _agent_rows(summary: ExportSummary) -> list[list[Any]]:
    rows: list[list[Any]] = [["agent", "prefix", "calls", "denied", "errors", "rate-limited", "tools"]]
    rows += [
        [
            row["credential_name"] or "(none)",
            row["credential_prefix"],
            row["calls"],
            row["denied"],
            row["errors"],
            row["rate_limited"],
            row["tools"],
        ]
        for row in summary.per_agent
    ]
    return rows


def _tool_rows(summary: ExportSummary) -> list[list[Any]]:
    rows: list[list[Any]] = [["target", "tool", "calls", "denied", "errors", "agents"]]
    rows += [
        [row["target_slug"], row["tool"] or "-", row["calls"], row["denied"], row["errors"], row["agents"]]
        for row in summary.per_tool
    ]
    return rows


def _pairs(label: str, pairs: list[tuple[str, int]]) -> list[list[Any]]:
    return [[label, "count"], *([name, count] for name, count in pairs)]


def _lifecycle_rows(summary: ExportSummary) -> list[list[Any]]:
    rows: list[list[Any]] = [["time (UTC)", "step", "credential", "by", "source"]]
    rows += [
        [f"{e['at']:%Y-%m-%d %H:%M:%S}", e["step"], e["object"], e["actor"], e["source"]]
        for e in summary.credential_lifecycle
    ]
    return rows


def _change_rows(summary: ExportSummary) -> list[list[Any]]:
    rows: list[list[Any]] = [["time (UTC)", "action", "object", "fields", "by (source)"]]
    rows += [
        [
            f"{e['at']:%Y-%m-%d %H:%M:%S}",
            e["action"],
            f"{e['object_type']} {e['object']}",
            ", ".join(e["fields"]),
            f"{e['actor']} ({e['source']})",
        ]
        for e in summary.policy_changes
    ]
    return rows


def _control_rows() -> list[list[Any]]:
    rows: list[list[Any]] = [
        ["gateway control", "evidence here", "SOC 2", "ISO 27001", "HIPAA (45 CFR)", "GDPR"]
    ]
    rows += [[m.control, m.evidence, m.soc2, m.iso27001, m.hipaa, m.gdpr] for m in CONTROL_MAPPINGS]
    return rows
