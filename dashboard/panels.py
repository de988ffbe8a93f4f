"""Reusable page blocks (presentation layer): badges, banners, empty states, cards and tables.

Why one module of about 430 lines: these are the small blocks every page shares, each a
few lines of Streamlit calls with the formatting they need; one file keeps the dashboard's
wording and number formats in one place, which is the reason it exists.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import streamlit as st

from backend.home import AlertRules, Alerts, Freshness, Headline, HeadlineChange
from backend.queries import BEGINNING, END_OF_TIME, Filters, Window
from backend.settings import Settings
from backend.windows import CUSTOM
from dashboard import columns
from glue_job.contract import BOUNDS, SIGNAL_BANDS

SIGNAL_RANGE_DBM: tuple[float, float] = BOUNDS["signal_dbm"]

# Freshness level -> (word, st.badge colour).
LEVELS: dict[str, tuple[str, str]] = {
    "green": ("Live", "green"),
    "amber": ("Delayed", "orange"),
    "red": ("Stale", "red"),
}
MISSING = "—"
MAX_ALERTS_LISTED = 10


# --- formatting ---------------------------------------------------------------------------


def format_age(seconds: float | None) -> str:
    if seconds is None:
        return MISSING
    seconds = round(seconds)
    if seconds < 90:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 90:
        return f"{minutes} min"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} h {minutes % 60} min"
    return f"{hours // 24} d {hours % 24} h"


def format_time(moment: datetime | None, now: datetime | None = None) -> str:
    """HH:MM:SS UTC, with the date when it is not today."""
    if moment is None:
        return MISSING
    moment = moment.astimezone(UTC)
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    pattern = "%H:%M:%S UTC" if moment.date() == today else "%Y-%m-%d %H:%M UTC"
    return moment.strftime(pattern)


def format_span(span: timedelta) -> str:
    """A window's length the way the presets name it: 15 min, 1 h, 7 d, 2 h 30 min."""
    days, rest = divmod(round(span.total_seconds() / 60), 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "min")]
    return " ".join(f"{n} {unit}" for n, unit in parts if n) or "0 min"


def describe_window(preset: str, window: Window) -> str:
    if window.since <= BEGINNING and window.until >= END_OF_TIME:
        return "all committed data"
    span = f"{format_time(window.since)} – {format_time(window.until)}"
    if preset == CUSTOM:
        return f"custom range {span} ({format_span(window.until - window.since)})"
    return f"last {preset} ({span})"


def describe_filters(filters: Filters) -> str:
    """What the KPI filters keep, in a few words."""

    def listed(values: tuple[str, ...], noun: str) -> str:
        if len(values) <= 3:
            return ", ".join(values)
        return f"{len(values)} {noun}"

    parts = []
    if filters.operators:
        parts.append(listed(filters.operators, "operators"))
    if filters.postal_codes:
        parts.append("postal codes " + listed(filters.postal_codes, "codes"))
    return "only " + " · ".join(parts) if parts else "all operators and postal codes"


def signal_help() -> str:
    """What a dBm figure means, from the contract's range and bands."""
    low, high = SIGNAL_RANGE_DBM
    bands = [f"{name} ≥ {format_dbm(floor, 0)}" for name, floor in SIGNAL_BANDS[:-1]]
    return (
        "Received signal strength in dBm (decibel-milliwatts), "
        f"{format_dbm(low, 0)} to {format_dbm(high, 0)}: "
        f"closer to 0 is stronger. Bands: {', '.join(bands)}, {SIGNAL_BANDS[-1][0]} below."
    )


def format_dbm(value: float, decimals: int = 1) -> str:
    """dBm in prose, with a real minus sign: whole numbers for limits, tenths for averages."""
    return f"{value:.{decimals}f}".replace("-", "−")


def _number(value: float | None, pattern: str) -> str:
    return MISSING if value is None else pattern.format(value)


# --- page furniture -----------------------------------------------------------------------


def deployment_line(settings: Settings) -> None:
    if settings.mode == "aws":
        st.caption(
            f":material/cloud: AWS deployment · Athena workgroup `{settings.athena_workgroup}`, "
            f"database `{settings.athena_database}` · lake `{settings.lake}`"
        )
    else:
        st.caption(
            f":material/computer: Local deployment · DuckDB over the lake at `{settings.lake}`"
        )


def freshness_badge(freshness: Freshness) -> None:
    word, colour = LEVELS[freshness.level]
    if not freshness.has_data:
        st.badge("No data yet", icon=":material/hourglass_empty:", color="gray")
        return
    st.badge(
        f"{word} · newest batch {format_age(freshness.age_seconds)} old",
        icon=":material/sensors:",
        color=colour,
        help="Age of the newest committed micro-batch that read records from the stream.",
    )
    st.caption(
        f"Last commit {format_time(freshness.last_commit)} · newest event "
        f"{format_time(freshness.newest_event)} · {freshness.batches:,} batches with data"
    )


def refresh_caption(taken_at: datetime, batch: int, interval: int, paused: bool) -> None:
    state = "paused" if paused else f"refreshes every {interval} s"
    if batch < 0:
        st.caption(f"Nothing committed yet, looked {format_time(taken_at)} · {state}")
    else:
        st.caption(f"Snapshot of batch #{batch} taken {format_time(taken_at)} · {state}")


def error_banner(what: str, cause: str) -> None:
    st.error(f"Could not load {what}: {cause}", icon=":material/error:")


def stale_note(what: str, taken_at: datetime) -> None:
    st.caption(f":orange[**stale**] {what} as last loaded at {format_time(taken_at)}")


def waiting_for_data(settings: Settings, interval: int) -> None:
    """Empty state: nothing committed yet, and how to get data flowing."""
    with st.container(border=True):
        st.subheader(":material/hourglass_empty: Waiting for data")
        if settings.mode == "aws":
            st.markdown(
                "Nothing has been committed to the lake yet. Start the Glue streaming job, "
                "then send events to the Kinesis stream:"
            )
            st.code("TELCOPULSE_MODE=aws telcopulse produce --rate 200", language="bash")
        else:
            st.markdown(
                f"Nothing has been committed to the lake at `{settings.lake}` yet. "
                "Start the whole local stack with `make up`, or, if the emulator and the "
                "stream job are already running, start the producer:"
            )
            st.code("telcopulse produce --rate 200", language="bash")
        st.caption(f"This page looks again every {interval} s.")


def empty_window(preset: str, freshness: Freshness | None) -> None:
    newest = ""
    if freshness is not None and freshness.newest_event is not None:
        newest = f" The newest committed event is from {format_time(freshness.newest_event)}."
    where = "in the chosen range" if preset == CUSTOM else f"in the last {preset}"
    st.info(
        f"No events {where}.{newest} Pick a wider time range in the sidebar.",
        icon=":material/filter_alt_off:",
    )


def headline_cards(headline: Headline | HeadlineChange) -> None:
    """Six cards; given a ``HeadlineChange``, each shows its change on the previous window.

    Signal rising and GPS precision (a radius) falling are the good directions; counts
    are drawn neutral.
    """
    change = headline if isinstance(headline, HeadlineChange) else None
    now = change.current if change else headline
    against = None
    if change is not None and change.previous_window is not None:
        before = change.previous_window
        against = f"vs previous {format_span(before.until - before.since)}"

    def card(place, label, value, field, unit="", *, digits=0, scale=1.0, color="off", help=None):
        delta = None if change is None else change.change(field)
        shown = _delta(None if delta is None else delta * scale, unit, digits)
        still = shown is not None and shown.startswith("±")
        place.metric(
            label,
            value,
            delta=shown,
            delta_color="off" if still else color,
            delta_arrow="off" if still else "auto",
            delta_description=against if shown else None,
            help=help,
            border=True,
        )

    top = st.columns(3)
    card(
        top[0],
        "Events",
        f"{now.events:,}",
        "events",
        help="Valid events (silver) in the window, duplicates and quarantined records excluded.",
    )
    card(
        top[1],
        "Avg signal",
        _number(now.avg_signal_dbm, "{:.1f} dBm"),
        "avg_signal_dbm",
        " dB",
        digits=1,
        color="normal",
        help=f"Σ signal / Σ samples over the window. {signal_help()} "
        "A rise (in dB) is an improvement.",
    )
    card(
        top[2],
        "Avg GPS precision",
        _number(now.avg_precision_m, "{:.1f} m"),
        "avg_precision_m",
        " m",
        digits=1,
        color="inverse",
        help="Mean GPS horizontal accuracy radius in metres: smaller is more precise, so a "
        "fall is an improvement.",
    )
    bottom = st.columns(3)
    share = None if now.in_service_share is None else 100 * now.in_service_share
    card(
        bottom[0],
        "In service",
        _number(share, "{:.1f} %"),
        "in_service_share",
        " pp",
        digits=1,
        scale=100.0,
        color="normal",
        help="Share of events whose network status was IN_SERVICE; its change is in "
        "percentage points (pp).",
    )
    card(
        bottom[1],
        "Active operators",
        f"{now.operators:,}",
        "operators",
        help="Distinct operators with at least one event in the window.",
    )
    card(
        bottom[2],
        "Active postal codes",
        f"{now.postal_codes:,}",
        "postal_codes",
        help="Distinct postal codes with at least one event (events without one are not counted).",
    )
    if change is not None and change.previous is not None and change.previous.is_empty:
        before = change.previous_window
        st.caption(
            f"Nothing to compare with: no events in the previous "
            f"{format_span(before.until - before.since)}."
        )


def _delta(value: float | None, unit: str, digits: int) -> str | None:
    """A signed change with its unit. Streamlit colours a delta by its leading sign, so a
    change that rounds to zero reads ``±0`` and is drawn neutral."""
    if value is None:
        return None
    if round(value, digits) == 0:
        return f"±{0:.{digits}f}{unit}"
    return f"{value:+,.{digits}f}{unit}"


def alert_list(alerts: Alerts, rules: AlertRules) -> None:
    """Postal codes in outage and operators whose signal fell, most severe first."""
    share = f"{rules.outage_share:.0%}"
    minutes = f"{rules.outage_window_minutes} min"
    if alerts.count == 0:
        st.success(
            f"No alerts: no postal code had more than {share} of its events out of service "
            f"or emergency-only in the last {minutes}, and no operator's average signal fell "
            f"by more than {rules.signal_drop_db:g} dB against the previous hour.",
            icon=":material/check_circle:",
        )
        return
    if len(alerts.outages):
        lines = [
            f"- **{row.postal_code}**: {row.outage_share:.0%} "
            f"({row.outage_events:,} of {row.events:,} events)"
            for row in alerts.outages.head(MAX_ALERTS_LISTED).itertuples()
        ]
        st.warning(
            f"**{_count(len(alerts.outages), 'postal code')}** with more than {share} of "
            f"events out of service or emergency-only in the last {minutes}:\n"
            + "\n".join(lines)
            + _more(len(alerts.outages)),
            icon=":material/signal_cellular_nodata:",
        )
    if len(alerts.signal_drops):
        lines = [
            f"- **{row.operator}**: {format_dbm(row.current_dbm)} dBm, down {row.drop_db:.1f} dB "
            f"from {format_dbm(row.previous_dbm)} dBm ({row.current_samples:,} readings this hour, "
            f"{row.previous_samples:,} the hour before)"
            for row in alerts.signal_drops.head(MAX_ALERTS_LISTED).itertuples()
        ]
        st.warning(
            f"**{_count(len(alerts.signal_drops), 'operator')}** whose average signal over "
            f"the last hour fell by more than {rules.signal_drop_db:g} dB against the hour "
            "before:\n" + "\n".join(lines) + _more(len(alerts.signal_drops)),
            icon=":material/signal_cellular_connected_no_internet_4_bar:",
        )


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _more(n: int) -> str:
    return f"\n\n…and {n - MAX_ALERTS_LISTED:,} more." if n > MAX_ALERTS_LISTED else ""


def not_by_postal_code(what: str) -> None:
    """Why a per-operator view is missing while the postal-code filter is on."""
    st.info(
        f"Gold keeps {what} per operator and minute, not per postal code, so this view "
        "cannot follow the postal-code filter. Clear that filter to see it.",
        icon=":material/filter_alt_off:",
    )


def chart_and_table(
    figure, frame: pd.DataFrame, *, file_name: str, column_config: dict, key: str
) -> None:
    """A chart with its numbers beside it, downloadable."""
    chart, table = st.columns([3, 2])
    chart.plotly_chart(figure, width="stretch")
    with table:
        table_with_download(frame, file_name=file_name, column_config=column_config, key=key)


def table_with_download(
    frame: pd.DataFrame, *, file_name: str, column_config: dict, key: str
) -> None:
    st.dataframe(frame, hide_index=True, width="stretch", column_config=column_config)
    st.download_button(
        "Download CSV",
        csv_download(frame),
        file_name=file_name,
        mime="text/csv",
        key=key,
        on_click="ignore",
        icon=":material/download:",
    )


def csv_download(frame: pd.DataFrame) -> Callable[[], bytes]:
    """A download button's data as Streamlit's deferred kind: the CSV is made when the
    button is clicked, not on every run. A page refreshing every few seconds otherwise
    stores a new file per button per run, and under load the browser asked for files the
    next run had already dropped (404s, found by bench.viewers_bench)."""
    return functools.partial(_csv_bytes, frame)


def _csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode("utf-8")


def query_times(times: pd.DataFrame, engine: str) -> None:
    """How long each of the page's queries took, folded away at the foot of the page."""
    with st.expander(f"This page's queries ({len(times)})", icon=":material/timer:"):
        st.caption(
            f"How long each query took on the {engine} engine when it last ran. Results are "
            "reused until the refresh interval passes."
        )
        st.dataframe(
            times,
            hide_index=True,
            column_config={
                "query": "Query",
                "took_ms": columns.measure("Took", "ms"),
                "loaded": "Loaded",
            },
        )


@dataclass(frozen=True)
class ChartTable:
    """One chart with its numbers beside it (``chart_tables``)."""

    title: str
    what: str  # names the load, the download file and the widget key
    figure: Callable[[pd.DataFrame], Any]
    columns: dict[str, Any]  # column_config
    help: str | None = None
    empty: str = "No readings in this window."
    not_by_postal_code: str | None = None  # what is missing under a postal-code filter


def chart_tables(
    specs, frames: dict[str, pd.DataFrame | None], file_suffix: str, by_postal_code: bool
) -> None:
    """Each spec's subheader, then its chart and downloadable table (or why there is none)."""
    for spec in specs:
        st.subheader(spec.title, help=spec.help)
        if by_postal_code and spec.not_by_postal_code:
            not_by_postal_code(spec.not_by_postal_code)
            continue
        frame = frames.get(spec.what)
        if frame is None:
            continue
        if frame.empty:
            st.info(spec.empty)
            continue
        chart_and_table(
            spec.figure(frame),
            frame,
            file_name=f"{spec.what}_{file_suffix}.csv",
            key=f"download_{spec.what}",
            column_config=spec.columns,
        )
