"""One area's breakdown on the Map page: a postal code or a coverage cell, drawn the same way.

The cards, the status breakdown, the per-operator table and chart, and the trend, from a
``backend.map_data.AreaDetail`` and the area's trend query.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from backend import map_data
from backend.windows import pick_bucket
from dashboard import charts, columns, panels
from dashboard import map as map_ui
from dashboard.page import Page


def show_area(
    page: Page,
    detail: map_data.AreaDetail | None,
    *,
    noun: str,
    trend: Callable,
) -> None:
    """``detail`` of one area (``noun`` names it in messages), then its trend: ``trend`` is
    the area's trend query, (engine, batch, window, area, bucket)."""
    if detail is None:
        return
    if detail.is_empty:
        st.info(
            f"No events for {noun} in the chosen time range. "
            "Pick another one or a wider time range.",
            icon=":material/filter_alt_off:",
        )
        return
    cards = st.columns(4)
    cards[0].metric("Events", f"{detail.events:,}", border=True)
    cards[1].metric(
        "Avg signal",
        "—" if detail.avg_signal_dbm is None else f"{detail.avg_signal_dbm:.1f} dBm",
        help=f"Σ signal / Σ readings over the window. {panels.signal_help()}",
        border=True,
    )
    share = detail.out_of_service_share
    cards[2].metric(
        "Out of service",
        "—" if share is None else f"{100 * share:.1f} %",
        help=f"Share of the events in {noun} whose status was OUT_OF_SERVICE.",
        border=True,
    )
    cards[3].metric("Operators", f"{len(detail.operators):,}", border=True)

    status_col, operator_col = st.columns([2, 3])
    with status_col:
        st.markdown(
            "**Status breakdown**",
            help=f"Events per Android service state in {noun} over the window.",
        )
        st.dataframe(
            detail.status[["status_label", "events", "share"]],
            hide_index=True,
            width="stretch",
            column_config={
                "status_label": "Status",
                "events": columns.count("Events"),
                "share": columns.share("Share"),
            },
        )
    with operator_col:
        st.markdown(
            "**Operators**",
            help=f"Events and Σ signal / Σ readings (dBm) per operator in {noun}.",
        )
        st.dataframe(
            detail.operators,
            hide_index=True,
            width="stretch",
            column_config={
                "operator": "Operator",
                "events": columns.count("Events"),
                "avg_signal_dbm": columns.measure("Avg signal", "dBm"),
                "signal_samples": columns.count("Readings"),
                "out_of_service_share": columns.share("Out of service"),
            },
        )

    with_signal = detail.operators.dropna(subset=["avg_signal_dbm"])
    if len(with_signal):
        st.plotly_chart(charts.signal_bars(with_signal), width="stretch", key="map_operator_signal")

    bucket = pick_bucket(detail.first_minute, detail.last_minute)
    st.markdown(
        f"**Events per {bucket} by status, and average signal**",
        help="Bars: events per status in each bucket (UTC). Line: Σ signal / Σ readings in dBm.",
    )
    rows = page.load(f"the trend of {noun}", trend, detail.area, bucket)
    if rows is not None:
        st.plotly_chart(map_ui.trend_figure(rows, bucket), width="stretch", key="map_trend")
