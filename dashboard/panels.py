"""Reusable page blocks (presentation layer): badges, banners, empty states, cards and tables."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from backend.dashboard_data import SIGNAL_BANDS, SIGNAL_RANGE_DBM, Freshness, Headline
from backend.queries import BEGINNING, END_OF_TIME, Window
from backend.settings import Settings

# Freshness level -> (word, st.badge colour).
LEVELS: dict[str, tuple[str, str]] = {
    "green": ("Live", "green"),
    "amber": ("Delayed", "orange"),
    "red": ("Stale", "red"),
}
MISSING = "—"


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


def describe_window(preset: str, window: Window) -> str:
    if window.since <= BEGINNING and window.until >= END_OF_TIME:
        return "all committed data"
    return f"last {preset} ({format_time(window.since)} – {format_time(window.until)})"


def signal_help() -> str:
    """What a dBm figure means, from the contract's range and bands."""
    low, high = SIGNAL_RANGE_DBM
    bands = [f"{name} ≥ {_dbm(floor)}" for name, floor in SIGNAL_BANDS[:-1]]
    return (
        f"Received signal strength in dBm (decibel-milliwatts), {_dbm(low)} to {_dbm(high)}: "
        f"closer to 0 is stronger. Bands: {', '.join(bands)}, {SIGNAL_BANDS[-1][0]} below."
    )


def _dbm(value: float) -> str:
    return f"{value:.0f}".replace("-", "−")  # a real minus sign reads better in prose


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
    st.info(
        f"No events in the last {preset}.{newest} Pick a wider time range in the sidebar.",
        icon=":material/filter_alt_off:",
    )


def headline_cards(headline: Headline) -> None:
    top = st.columns(3)
    top[0].metric(
        "Events",
        f"{headline.events:,}",
        help="Valid events (silver) in the window, duplicates and quarantined records excluded.",
        border=True,
    )
    top[1].metric(
        "Avg signal",
        _number(headline.avg_signal_dbm, "{:.1f} dBm"),
        help=f"Σ signal / Σ samples over the window. {signal_help()}",
        border=True,
    )
    top[2].metric(
        "Avg GPS precision",
        _number(headline.avg_precision_m, "{:.1f} m"),
        help="Mean GPS horizontal accuracy radius in metres: smaller is more precise.",
        border=True,
    )
    bottom = st.columns(3)
    share = None if headline.in_service_share is None else 100 * headline.in_service_share
    bottom[0].metric(
        "In service",
        _number(share, "{:.1f} %"),
        help="Share of events whose network status was IN_SERVICE.",
        border=True,
    )
    bottom[1].metric("Operators", f"{headline.operators:,}", border=True)
    bottom[2].metric(
        "Postal codes",
        f"{headline.postal_codes:,}",
        help="Distinct postal codes seen (events without one are not counted).",
        border=True,
    )


def table_with_download(
    frame: pd.DataFrame, *, file_name: str, column_config: dict, key: str
) -> None:
    st.dataframe(frame, hide_index=True, width="stretch", column_config=column_config)
    st.download_button(
        "Download CSV",
        frame.to_csv(index=False).encode("utf-8"),
        file_name=file_name,
        mime="text/csv",
        key=key,
        on_click="ignore",
        icon=":material/download:",
    )
