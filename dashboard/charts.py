"""Charts (presentation layer): Plotly figures with one colour per operator everywhere.

Colours come from a fixed, medium-lightness palette that reads on Streamlit's
light and dark themes. Operators in the alias table get palette slots in sorted
order (distinct and stable whatever data is on screen); any other name is hashed
into the palette, so it too keeps its colour across reruns, pages and sessions.

Why one module of about 380 lines: every figure the KPI and Map pages draw is here, and
they share the palette, the bucket handling of the trends and the layout defaults; split
up, each part would import most of the others.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from functools import cache

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from backend.kpis import BANDS, known_operators
from glue_job.contract import SIGNAL_BANDS, STATUS_LABELS

PALETTE: tuple[str, ...] = (
    "#3969AC",  # blue
    "#E68310",  # orange
    "#11A579",  # green
    "#E73F74",  # raspberry
    "#7F3C8D",  # purple
    "#F2B701",  # yellow
    "#008695",  # teal
    "#80BA5A",  # light green
    "#CF1C90",  # magenta
    "#F97B72",  # salmon
    "#5D69B1",  # indigo
    "#52BCA3",  # aqua
    "#9C6B30",  # brown
    "#CC61B0",  # orchid
    "#2F8AC4",  # sky
    "#A5AA99",  # grey green
)
STATUS_COLORS: dict[str, str] = {
    "IN_SERVICE": "#11A579",
    "OUT_OF_SERVICE": "#E73F74",
    "EMERGENCY_ONLY": "#F2B701",
    "POWER_OFF": "#A5AA99",
}
# Signal-quality bands, strongest first: green to red, like the status colours.
BAND_COLORS: dict[str, str] = {
    "excellent": "#11A579",
    "good": "#80BA5A",
    "fair": "#F2B701",
    "poor": "#E73F74",
}
_BAR_HEIGHT = 26
_HEATMAP_ROW = 24
_MARGIN = {"l": 0, "r": 10, "t": 10, "b": 0}


@cache
def _known_slots() -> dict[str, int]:
    return {name: i % len(PALETTE) for i, name in enumerate(known_operators())}


def operator_color(operator: str) -> str:
    slot = _known_slots().get(operator)
    if slot is None:
        digest = hashlib.sha256(operator.encode("utf-8")).digest()
        slot = int.from_bytes(digest[:4], "big") % len(PALETTE)
    return PALETTE[slot]


def operator_colors(operators: Iterable[str]) -> dict[str, str]:
    return {name: operator_color(name) for name in operators}


def signal_bars(signal: pd.DataFrame) -> go.Figure:
    """Average signal per operator, strongest on top; bars grow from a floor so longer is better."""
    ordered = signal.sort_values("avg_signal_dbm")
    weakest = ordered["avg_signal_dbm"].min() if len(ordered) else -120.0
    strongest = ordered["avg_signal_dbm"].max() if len(ordered) else -60.0
    floor = min(-120.0, math.floor(weakest / 10) * 10 - 10)
    ceiling = min(-30.0, max(-60.0, math.ceil(strongest / 10) * 10 + 10))
    figure = go.Figure(
        go.Bar(
            y=ordered["operator"],
            x=ordered["avg_signal_dbm"] - floor,
            base=floor,
            orientation="h",
            marker_color=[operator_color(o) for o in ordered["operator"]],
            customdata=ordered[["avg_signal_dbm", "signal_samples"]].to_numpy(),
            hovertemplate="%{y}: %{customdata[0]:.1f} dBm<br>%{customdata[1]:,} samples"
            "<extra></extra>",
        )
    )
    # Each band's floor as a dotted line, named on its side of the line, above the plot area.
    # The layout entries add_vline(annotation_position="top right") makes, written directly:
    # add_vline checks the figure's subplots on every call, 5 % of a Map refresh for three.
    floors = [(band, x) for band, x in SIGNAL_BANDS if math.isfinite(x)]
    figure.update_layout(
        shapes=[
            {
                "type": "line",
                "x0": x,
                "x1": x,
                "xref": "x",
                "y0": 0,
                "y1": 1,
                "yref": "y domain",
                "line": {"dash": "dot", "width": 1},
                "opacity": 0.5,
            }
            for _, x in floors
        ],
        annotations=[
            {
                "text": band,
                "x": x,
                "xref": "x",
                "xanchor": "left",
                "y": 1,
                "yref": "y domain",
                "yanchor": "bottom",
                "showarrow": False,
                "font": {"size": 10},
            }
            for band, x in floors
        ],
    )
    figure.update_layout(
        height=_bars_height(len(ordered)),
        margin={**_MARGIN, "t": 30},
        xaxis={"title": "average signal (dBm)", "range": [floor, ceiling]},
        yaxis={"title": None},
        showlegend=False,
    )
    return figure


def precision_bars(precision: pd.DataFrame) -> go.Figure:
    """Average GPS accuracy per operator, most precise (smallest) on top."""
    ordered = precision.sort_values("avg_precision_m", ascending=False)
    figure = go.Figure(
        go.Bar(
            y=ordered["operator"],
            x=ordered["avg_precision_m"],
            orientation="h",
            marker_color=[operator_color(o) for o in ordered["operator"]],
            customdata=ordered[["precision_samples"]].to_numpy(),
            hovertemplate="%{y}: %{x:.1f} m<br>%{customdata[0]:,} samples<extra></extra>",
        )
    )
    figure.update_layout(
        height=_bars_height(len(ordered)),
        margin=_MARGIN,
        xaxis={
            "title": "average GPS accuracy radius (m), smaller is better",
            "rangemode": "tozero",
        },
        yaxis={"title": None},
        showlegend=False,
    )
    return figure


def status_bars(status: pd.DataFrame) -> go.Figure:
    """Events per status for the given postal codes (long form), busiest on top."""
    order = status.groupby("postal_code")["events"].sum().sort_values(kind="stable").index.tolist()
    figure = go.Figure()
    for label in STATUS_LABELS.values():
        rows = status[status["status_label"] == label]
        if rows.empty:
            continue
        figure.add_bar(
            name=label,
            y=rows["postal_code"],
            x=rows["events"],
            orientation="h",
            marker_color=STATUS_COLORS.get(label),
            hovertemplate="%{y} " + label + ": %{x:,} events<extra></extra>",
        )
    figure.update_layout(
        barmode="stack",
        height=_bars_height(len(order)),
        margin=_MARGIN,
        xaxis={"title": "events"},
        yaxis={"title": None, "type": "category", "categoryorder": "array", "categoryarray": order},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0, "title": None},
    )
    return figure


def band_bars(bands: pd.DataFrame) -> go.Figure:
    """Signal-quality bands per operator as 100 % stacked bars, most 'excellent' on top."""
    shares = bands[list(BANDS)].div(
        bands["signal_samples"].where(bands["signal_samples"] > 0), axis=0
    )
    ordered = bands.assign(_best=shares["excellent"] + shares["good"]).sort_values(
        ["_best", "operator"], ascending=[True, False]
    )
    figure = go.Figure()
    for band in BANDS:
        share = ordered[band] / ordered["signal_samples"]
        figure.add_bar(
            name=band,
            y=ordered["operator"],
            x=100 * share,
            orientation="h",
            marker_color=BAND_COLORS[band],
            customdata=ordered[[band, "signal_samples"]].to_numpy(),
            hovertemplate="%{y} " + band + ": %{x:.1f} %<br>%{customdata[0]:,} of "
            "%{customdata[1]:,} readings<extra></extra>",
        )
    figure.update_layout(
        barmode="stack",
        height=_bars_height(len(ordered)) + 30,
        margin=_MARGIN,
        xaxis={"title": "share of signal readings (%)", "range": [0, 100]},
        yaxis={"title": None, "type": "category"},
        legend={
            "orientation": "h",
            "yanchor": "bottom",
            "y": 1.0,
            "x": 0,
            "title": None,
            "traceorder": "normal",
        },
    )
    return figure


def status_heatmap(wide: pd.DataFrame) -> go.Figure:
    """Postal code × status: each cell's shade is that status's share of the code's events,
    in the status colour; the number is its event count. Rows keep ``wide``'s order, top
    down. Empty cells stay blank, so the chart reads on light and dark themes alike."""
    codes = wide["postal_code"].astype(str).tolist()
    figure = go.Figure()
    for label in STATUS_LABELS.values():
        counts = wide[label]
        shares = (counts / wide["events"]).where(counts > 0)
        figure.add_heatmap(
            name=label,
            x=[label] * len(codes),
            y=codes,
            z=shares,
            zmin=0,
            zmax=1,
            colorscale=[[0, _tint(STATUS_COLORS[label])], [1, STATUS_COLORS[label]]],
            showscale=False,
            text=[f"{c:,}" if c else "" for c in counts],
            texttemplate="%{text}",
            customdata=wide[["events"]].to_numpy(),
            hovertemplate="%{y} " + label + ": %{text} of %{customdata[0]:,} events "
            "(%{z:.0%})<extra></extra>",
            xgap=2,
            ygap=2,
        )
    figure.update_layout(
        height=max(200, 70 + _HEATMAP_ROW * len(codes)),
        margin=_MARGIN,
        xaxis={"title": None, "side": "top", "type": "category"},
        yaxis={"title": None, "type": "category", "autorange": "reversed"},
        showlegend=False,
    )
    return figure


def _tint(color: str, amount: float = 0.75) -> str:
    """``color`` mixed with white: the shade of a small share."""
    rgb = [int(color[i : i + 2], 16) for i in (1, 3, 5)]
    mixed = [round(c + (255 - c) * amount) for c in rgb]
    return "#" + "".join(f"{c:02X}" for c in mixed)


def utc_buckets(buckets: pd.Series) -> np.ndarray:
    """Buckets as datetime64 in UTC without a zone: what Plotly writes for a datetime
    column, at the cost of one array instead of one Timestamp at a time."""
    if isinstance(buckets.dtype, pd.DatetimeTZDtype):
        buckets = buckets.dt.tz_convert("UTC").dt.tz_localize(None)
    return buckets.to_numpy()


def with_gaps(
    rows: pd.DataFrame, column: str, step: pd.Timedelta | None
) -> tuple[np.ndarray, list]:
    """``rows``' buckets (UTC, without a zone, as Plotly writes a datetime column) and
    ``column`` (None where missing) with a blank point wherever two buckets are further
    apart than ``step``: a line breaks where there was no data instead of joining across.

    The buckets are a datetime64 array rather than a list of Timestamps: Plotly validates
    and deep-copies a list item by item, which took two thirds of the KPI page's run with
    a day of 5-minute buckets for 14 operators (210 ms a chart; 75 ms this way)."""
    rows = rows.sort_values("bucket")
    x = utc_buckets(rows["bucket"])
    y = rows[column].astype(object).where(rows[column].notna(), None).to_list()
    if step is not None and len(x) > 1:
        gaps = np.flatnonzero(np.diff(x) > step.to_timedelta64()) + 1
        x = np.insert(x, gaps, x[gaps - 1] + step.to_timedelta64())
        for at in reversed(gaps.tolist()):
            y.insert(at, None)
    return x, y


def bucket_step(buckets: pd.Series) -> pd.Timedelta | None:
    """The bucket size of a trend: the smallest distance between two of its buckets."""
    gaps = pd.Series(sorted(buckets.unique())).diff().dropna()
    return gaps.min() if len(gaps) else None


def operator_lines(trend: pd.DataFrame, column: str, title: str, unit: str) -> go.Figure:
    """One line per operator over time (UTC buckets), broken where an operator had none.

    The traces go to the figure in one list, as dicts: one validation pass, where a
    ``add_scatter`` per operator also re-walks the figure each time (about half the time
    for 14 operators)."""
    step = bucket_step(trend["bucket"]) if len(trend) else None
    lines = []
    for operator, rows in trend.dropna(subset=[column]).groupby("operator", sort=True):
        x, y = with_gaps(rows, column, step)
        lines.append(
            {
                "type": "scatter",
                "name": operator,
                "x": x,
                "y": y,
                "mode": "lines+markers",
                "marker": {"size": 4},
                "line": {"color": operator_color(operator)},
                "hovertemplate": f"{operator}: %{{y:.1f}} {unit}<br>%{{x}}<extra></extra>",
            }
        )
    return go.Figure(
        data=lines,
        layout={
            "height": _legend_height(trend),
            "margin": _MARGIN,
            "xaxis": {"title": "event time (UTC)"},
            "yaxis": {"title": title},
            "legend": {"traceorder": "normal"},
        },
    )


def events_stacked(trend: pd.DataFrame) -> go.Figure:
    """Events per bucket, stacked by operator (traces as dicts: see ``operator_lines``)."""
    bars = [
        {
            "type": "bar",
            "name": operator,
            "x": utc_buckets(rows["bucket"]),
            "y": rows["events"].to_numpy(),
            "marker": {"color": operator_color(operator)},
            "hovertemplate": f"{operator}: %{{y:,}} events<br>%{{x}}<extra></extra>",
        }
        for operator, rows in trend.groupby("operator", sort=True)
    ]
    return go.Figure(
        data=bars,
        layout={
            "barmode": "stack",
            "bargap": 0.1,
            "height": _legend_height(trend),
            "margin": _MARGIN,
            "xaxis": {"title": "event time (UTC)"},
            "yaxis": {"title": "events"},
            "legend": {"traceorder": "normal"},
        },
    )


def _bars_height(rows: int) -> int:
    return max(160, 60 + _BAR_HEIGHT * rows)


def _legend_height(trend: pd.DataFrame) -> int:
    """Tall enough for a legend entry per operator without a scroll bar."""
    return max(380, 80 + 22 * trend["operator"].nunique())
