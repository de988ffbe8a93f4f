"""Pipeline Health charts (presentation layer): throughput, latency, dropped records and
quarantine reasons over time, as plotly figures. ``dashboard.health`` draws them."""

from __future__ import annotations

import hashlib

import pandas as pd
import plotly.graph_objects as go

from backend import health_data as health
from dashboard.charts import PALETTE

LINE_COLOR = PALETTE[0]
WORST_COLOR = PALETTE[1]
DUPLICATE_COLOR = PALETTE[4]
QUARANTINE_COLOR = PALETTE[3]
_MARGIN = {"l": 0, "r": 10, "t": 30, "b": 0}
_HEIGHT = 260


# --- charts -------------------------------------------------------------------------------


def reason_colors(reasons: list[str]) -> dict[str, str]:
    """A palette colour per reason code: its own hashed slot, or the next free one.

    A reason keeps its colour across refreshes and pages unless it shares a slot with
    another reason on the same chart; then the one later in name order moves along the
    palette, so up to ``len(PALETTE)`` reasons never share a colour.
    """
    taken: set[int] = set()
    colours = {}
    for reason in sorted(set(reasons)):
        digest = hashlib.sha256(reason.encode("utf-8")).digest()
        slot = int.from_bytes(digest[:4], "big") % len(PALETTE)
        for step in range(len(PALETTE)):
            if (slot + step) % len(PALETTE) not in taken:
                slot = (slot + step) % len(PALETTE)
                break
        taken.add(slot)
        colours[reason] = PALETTE[slot]
    return colours


def _time_axis(resolution: str) -> dict:
    where = "batch start" if resolution == "batch" else f"batch start, per {resolution}"
    return {"title": f"{where} (UTC)"}


def _batch_label(trend: pd.DataFrame, resolution: str) -> pd.Series:
    if resolution == "batch":
        return "batch #" + trend["first_batch_id"].astype(str)
    return (
        trend["batches"].map("{:,} batches".format)
        + " (#"
        + trend["first_batch_id"].astype(str)
        + "–#"
        + trend["last_batch_id"].astype(str)
        + ")"
    )


def trend_line(
    trend: pd.DataFrame,
    column: str,
    *,
    title: str,
    unit: str,
    resolution: str,
    worst: str | None = None,
) -> go.Figure:
    """One metric over time; per bucket the average, with the worst batch dotted."""
    rows = trend.dropna(subset=[column])
    labels = _batch_label(rows, resolution)
    average = resolution != "batch"
    figure = go.Figure()
    figure.add_scatter(
        name="average per batch" if average else title,
        x=rows["time"],
        y=rows[column],
        mode="lines+markers",
        marker_size=4,
        line_color=LINE_COLOR,
        customdata=labels,
        hovertemplate=f"%{{y:,.2f}} {unit}<br>%{{customdata}}<br>%{{x}}<extra></extra>",
    )
    if worst is not None and average:
        figure.add_scatter(
            name="worst batch",
            x=rows["time"],
            y=rows[worst],
            mode="lines",
            line={"color": WORST_COLOR, "dash": "dot"},
            customdata=labels,
            hovertemplate=f"worst %{{y:,.2f}} {unit}<br>%{{customdata}}<br>%{{x}}<extra></extra>",
        )
    figure.update_layout(
        height=_HEIGHT,
        margin=_MARGIN,
        xaxis=_time_axis(resolution),
        yaxis={"title": f"{title} ({unit})", "rangemode": "tozero"},
        showlegend=average and worst is not None,
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0, "title": None},
    )
    return figure


def dropped_bars(trend: pd.DataFrame, resolution: str) -> go.Figure:
    """Duplicates dropped and records quarantined per batch (or bucket)."""
    labels = _batch_label(trend, resolution)
    figure = go.Figure()
    for column, name, colour in (
        ("duplicates", "duplicates dropped", DUPLICATE_COLOR),
        ("quarantine_rows", "quarantined", QUARANTINE_COLOR),
    ):
        figure.add_bar(
            name=name,
            x=trend["time"],
            y=trend[column],
            marker_color=colour,
            customdata=labels,
            hovertemplate=f"%{{y:,}} {name}<br>%{{customdata}}<br>%{{x}}<extra></extra>",
        )
    figure.update_layout(
        barmode="group",
        height=_HEIGHT,
        margin=_MARGIN,
        xaxis=_time_axis(resolution),
        yaxis={"title": "records", "rangemode": "tozero"},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0, "title": None},
    )
    return figure


def reasons_stacked(reasons: pd.DataFrame, unit: str) -> go.Figure:
    """Quarantined records per reason code over time, most frequent reason at the bottom."""
    order = health.reason_totals(reasons)["reason"].tolist()
    colours = reason_colors(order)
    figure = go.Figure()
    for reason in order:
        rows = reasons[reasons["reason"] == reason]
        figure.add_bar(
            name=reason,
            x=rows["bucket"],
            y=rows["records"],
            marker_color=colours[reason],
            hovertemplate=f"{reason}: %{{y:,}} records<br>%{{x}}<extra></extra>",
        )
    figure.update_layout(
        barmode="stack",
        height=max(300, 120 + 22 * len(order)),
        margin=_MARGIN,
        xaxis={"title": f"ingest time, per {unit} (UTC)"},
        yaxis={"title": "quarantined records"},
        legend={"title": None, "traceorder": "normal"},
    )
    return figure
