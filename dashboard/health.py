"""Pipeline Health helpers (presentation layer): timed, cached loaders and the page's charts.

Loaders follow ``dashboard.cache``: ``(_engine, engine_key, batch, window, tick, *extra)``,
so ``Page.load`` can run them and data expires with the user's refresh interval. Each
returns a ``Timed`` value: the result plus how long its query took when it really ran,
which is what the page's own latency table shows (a cached result keeps its old time).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from backend import health_data as health
from backend.engine import QueryEngine
from backend.queries import Window
from backend.settings import Settings
from dashboard.cache import MAX_INTERVAL_SECONDS
from dashboard.charts import PALETTE

T = TypeVar("T")
_ENTRIES = 256
# The stream probe is cheap and says "is it up right now", so it is only reused briefly.
STREAM_TTL_SECONDS = 15
STREAM_TIMEOUT_SECONDS = 1.0
LINE_COLOR = PALETTE[0]
WORST_COLOR = PALETTE[1]
DUPLICATE_COLOR = PALETTE[4]
QUARANTINE_COLOR = PALETTE[3]
_MARGIN = {"l": 0, "r": 10, "t": 30, "b": 0}
_HEIGHT = 260


@dataclass(frozen=True)
class Timed(Generic[T]):
    value: T
    seconds: float  # how long the query took when it ran
    ran_at: datetime


def _timed(fetch: Callable[..., T], *args: Any, **kwargs: Any) -> Timed[T]:
    started = time.perf_counter()
    value = fetch(*args, **kwargs)
    return Timed(value, time.perf_counter() - started, datetime.now(UTC))


# --- cached loaders -----------------------------------------------------------------------


@st.cache_data(ttl=MAX_INTERVAL_SECONDS, max_entries=_ENTRIES, show_spinner=False)
def layers(
    _engine: QueryEngine,
    engine_key: str,
    batch: int,
    window: Window,
    tick: int,
    thresholds: tuple[int, int],
) -> Timed[list[health.LayerFreshness]]:
    # The window is unused (freshness is about now); the page re-rates ages at each run.
    amber, red = thresholds
    return _timed(
        health.query_layer_freshness, _engine, batch, amber_seconds=amber, red_seconds=red
    )


@st.cache_data(ttl=MAX_INTERVAL_SECONDS, max_entries=_ENTRIES, show_spinner=False)
def totals(
    _engine: QueryEngine, engine_key: str, batch: int, window: Window, tick: int
) -> Timed[health.WindowTotals]:
    return _timed(health.query_window_totals, _engine, window, batch)


@st.cache_data(ttl=MAX_INTERVAL_SECONDS, max_entries=_ENTRIES, show_spinner=False)
def batch_trend(
    _engine: QueryEngine, engine_key: str, batch: int, window: Window, tick: int, resolution: str
) -> Timed[pd.DataFrame]:
    return _timed(health.query_batch_trend, _engine, window, batch, resolution)


@st.cache_data(ttl=MAX_INTERVAL_SECONDS, max_entries=_ENTRIES, show_spinner=False)
def quarantine_reasons(
    _engine: QueryEngine, engine_key: str, batch: int, window: Window, tick: int, unit: str
) -> Timed[pd.DataFrame]:
    return _timed(health.query_quarantine_reasons, _engine, window, batch, unit)


@st.cache_data(ttl=MAX_INTERVAL_SECONDS, max_entries=_ENTRIES, show_spinner=False)
def quarantine_samples(
    _engine: QueryEngine, engine_key: str, batch: int, window: Window, tick: int, reason: str
) -> Timed[pd.DataFrame]:
    return _timed(health.query_quarantine_samples, _engine, window, batch, reason)


def stream_key(settings: Settings) -> str:
    return f"{settings.mode}:{settings.region}:{settings.endpoint_url}:{settings.stream_name}"


@st.cache_resource(show_spinner=False)
def _stream_client(key: str, _settings: Settings):
    # Building a boto3 client costs more than the probe itself: keep one per stream.
    return health.stream_client(_settings, STREAM_TIMEOUT_SECONDS)


@st.cache_data(ttl=STREAM_TTL_SECONDS, max_entries=16, show_spinner=False)
def _stream_status(key: str, tick: int, _settings: Settings) -> Timed[health.StreamStatus]:
    return _timed(health.check_stream, _stream_client(key, _settings), _settings)


def stream_status(settings: Settings, tick: int) -> Timed[health.StreamStatus]:
    """The stream's status, probed at most every ``STREAM_TTL_SECONDS``; never raises."""
    return _stream_status(stream_key(settings), tick, settings)


# --- latency table ------------------------------------------------------------------------


def latency_table(timings: dict[str, Timed | None], run_started: datetime) -> pd.DataFrame:
    """query, took_ms, loaded: one row per loader of this run (a failed one is left out)."""
    rows = []
    for name, timed in timings.items():
        if timed is None:
            continue
        if timed.ran_at >= run_started:
            loaded = "this run"
        else:
            loaded = f"cached at {timed.ran_at.astimezone(UTC):%H:%M:%S} UTC"
        rows.append({"query": name, "took_ms": 1000 * timed.seconds, "loaded": loaded})
    return pd.DataFrame(rows, columns=["query", "took_ms", "loaded"])


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
