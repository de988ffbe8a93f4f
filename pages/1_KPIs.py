"""KPIs page (dashboard): signal and GPS precision per operator, network status per postal code."""

import streamlit as st

from backend.dashboard_data import (
    NO_POSTAL_CODE,
    STATUS_LABELS,
    pick_trend_unit,
    pivot_status,
    top_postal_codes,
)
from dashboard import cache, charts, panels
from dashboard.page import start_page

TOP_POSTAL_CODES = 20

page = start_page("KPIs", ":material/bar_chart:")

st.title("KPIs")
page.require_data()
st.caption(
    f"{panels.describe_window(page.preset, page.window)} · averages are Σ values / Σ samples "
    "over one-minute partial aggregates, never averages of averages."
)
file_suffix = page.preset.replace(" ", "")
headline = page.load("headline KPIs", cache.headline)
if headline is not None and headline.is_empty:
    panels.empty_window(page.preset, page.freshness())
    st.stop()

# --- signal strength ------------------------------------------------------------------------
st.subheader(
    "Average signal strength per operator",
    help=panels.signal_help(),
)
signal = page.load("signal by operator", cache.signal)
if signal is not None:
    if signal.empty:
        st.info("No signal readings in this window.")
    else:
        chart, table = st.columns([3, 2])
        chart.plotly_chart(charts.signal_bars(signal), width="stretch")
        with table:
            panels.table_with_download(
                signal,
                file_name=f"signal_by_operator_{file_suffix}.csv",
                key="download_signal",
                column_config={
                    "operator": "Operator",
                    "avg_signal_dbm": st.column_config.NumberColumn(
                        "Avg signal", format="%.1f dBm"
                    ),
                    "samples": st.column_config.NumberColumn("Samples", format="localized"),
                },
            )

# --- GPS precision --------------------------------------------------------------------------
st.subheader(
    "Average GPS precision per operator",
    help="GPS horizontal accuracy radius in metres: the device is within this distance of the "
    "reported position with 68 % confidence. Smaller is more precise.",
)
precision = page.load("GPS precision by operator", cache.precision)
if precision is not None:
    if precision.empty:
        st.info("No GPS precision readings in this window.")
    else:
        chart, table = st.columns([3, 2])
        chart.plotly_chart(charts.precision_bars(precision), width="stretch")
        with table:
            panels.table_with_download(
                precision,
                file_name=f"gps_precision_by_operator_{file_suffix}.csv",
                key="download_precision",
                column_config={
                    "operator": "Operator",
                    "avg_precision_m": st.column_config.NumberColumn(
                        "Avg precision", format="%.1f m"
                    ),
                    "samples": st.column_config.NumberColumn("Samples", format="localized"),
                },
            )

# --- network status -------------------------------------------------------------------------
st.subheader(
    "Network status per postal code",
    help="Events per Android service state: IN_SERVICE, OUT_OF_SERVICE, EMERGENCY_ONLY, "
    "POWER_OFF. Events without a postal code are grouped as (none).",
)
status = page.load("network status by postal code", cache.status)
if status is not None:
    if status.empty:
        st.info("No events in this window.")
    else:
        wide = pivot_status(status)
        chart, table = st.columns([3, 2])
        known = f" of {headline.postal_codes:,} postal codes" if headline else ""
        chart.caption(
            f"The {min(TOP_POSTAL_CODES, len(wide))} busiest{known}; "
            f"{NO_POSTAL_CODE} counts events that carried no postal code."
        )
        chart.plotly_chart(
            charts.status_bars(top_postal_codes(status, TOP_POSTAL_CODES)), width="stretch"
        )
        with table:
            panels.table_with_download(
                wide,
                file_name=f"status_by_postal_code_{file_suffix}.csv",
                key="download_status",
                column_config={
                    "postal_code": "Postal code",
                    **{
                        label: st.column_config.NumberColumn(
                            label.replace("_", " ").capitalize(), format="localized"
                        )
                        for label in STATUS_LABELS.values()
                    },
                    "events": st.column_config.NumberColumn("Events", format="localized"),
                    "in_service_share": st.column_config.ProgressColumn(
                        "In-service share", format="percent", min_value=0.0, max_value=1.0
                    ),
                },
            )

# --- trend ----------------------------------------------------------------------------------
if headline is not None:
    unit = pick_trend_unit(headline.first_minute, headline.last_minute)
    st.subheader(f"Average signal per {unit} by operator")
    trend = page.load("signal trend", cache.trend, unit)
    if trend is not None:
        st.plotly_chart(
            charts.operator_lines(trend, "avg_signal_dbm", "average signal (dBm)", "dBm"),
            width="stretch",
        )
