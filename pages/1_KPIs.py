"""KPIs page (dashboard): signal, signal bands and GPS precision per operator, trends, and
network status per postal code, filtered by operator and postal code."""

import streamlit as st

from backend.dashboard_data import BANDS, STATUS_LABELS, pick_bucket, pivot_status
from dashboard import cache, charts, controls, panels
from dashboard.page import start_page

HEATMAP_POSTAL_CODES = 25
COUNT = {"format": "localized"}

page = start_page("KPIs", ":material/bar_chart:")

st.title("KPIs")
st.caption(
    "Signal strength in dBm (−140 to −30; closer to 0 is stronger), GPS precision as the "
    "accuracy radius in metres (smaller is better), network status as event counts. Averages "
    "are Σ values / Σ readings over one-minute partial aggregates, never averages of averages. "
    "Times are event times, UTC."
)
page.require_data()
headline = page.load("headline KPIs", cache.headline)
if headline is not None and headline.is_empty:
    panels.empty_window(page.preset, page.freshness())
    st.stop()

filters = controls.kpi_filters(page.load("filter choices", cache.choices))
by_postal_code = bool(filters.postal_codes)
st.caption(
    f"{panels.describe_window(page.preset, page.window).capitalize()} · "
    f"{panels.describe_filters(filters)}"
)
file_suffix = page.preset.replace(" ", "") + ("_filtered" if not filters.is_empty else "")
status = page.load("network status by postal code", cache.status, filters)
if status is not None and status.empty:
    st.info(
        "No events match these filters in this time range. Clear a filter or pick a wider "
        "range in the sidebar.",
        icon=":material/filter_alt_off:",
    )
    st.stop()


# --- signal strength ------------------------------------------------------------------------
st.subheader("Average signal strength per operator", help=panels.signal_help())
signal = page.load("signal by operator", cache.signal, filters)
if signal is not None:
    if signal.empty:
        st.info("No signal readings in this window.")
    else:
        panels.chart_and_table(
            charts.signal_bars(signal),
            signal,
            file_name=f"signal_by_operator_{file_suffix}.csv",
            key="download_signal",
            column_config={
                "operator": "Operator",
                "avg_signal_dbm": st.column_config.NumberColumn("Avg signal", format="%.1f dBm"),
                "samples": st.column_config.NumberColumn("Readings", **COUNT),
            },
        )

# --- signal quality bands -------------------------------------------------------------------
st.subheader(
    "Signal quality per operator",
    help="Share of each operator's signal readings per band: excellent ≥ −80 dBm, good −80 "
    "to −90, fair −90 to −100, poor below −100. Best operators on top.",
)
if by_postal_code:
    panels.not_by_postal_code("signal bands")
else:
    bands = page.load("signal bands by operator", cache.signal_bands, filters)
    if bands is not None:
        if bands.empty:
            st.info("No signal readings in this window.")
        else:
            panels.chart_and_table(
                charts.band_bars(bands),
                bands,
                file_name=f"signal_bands_by_operator_{file_suffix}.csv",
                key="download_bands",
                column_config={
                    "operator": "Operator",
                    **{
                        band: st.column_config.NumberColumn(band.capitalize(), **COUNT)
                        for band in BANDS
                    },
                    "samples": st.column_config.NumberColumn("Readings", **COUNT),
                },
            )

# --- GPS precision --------------------------------------------------------------------------
st.subheader(
    "Average GPS precision per operator",
    help="GPS horizontal accuracy radius in metres: the device is within this distance of the "
    "reported position with 68 % confidence. Smaller is more precise.",
)
if by_postal_code:
    panels.not_by_postal_code("GPS precision")
else:
    precision = page.load("GPS precision by operator", cache.precision, filters)
    if precision is not None:
        if precision.empty:
            st.info("No GPS precision readings in this window.")
        else:
            panels.chart_and_table(
                charts.precision_bars(precision),
                precision,
                file_name=f"gps_precision_by_operator_{file_suffix}.csv",
                key="download_precision",
                column_config={
                    "operator": "Operator",
                    "avg_precision_m": st.column_config.NumberColumn(
                        "Avg precision", format="%.1f m"
                    ),
                    "samples": st.column_config.NumberColumn("Readings", **COUNT),
                },
            )

# --- trends ---------------------------------------------------------------------------------
if headline is not None:
    bucket = pick_bucket(headline.first_minute, headline.last_minute)
    st.subheader(
        f"Trends per operator, per {bucket}",
        help="Each point is one bucket's ratio of sums. The bucket grows with the span of the "
        "data in range: a minute up to 3 h, 5 min up to 24 h, an hour up to 14 days, then a day.",
    )
    trend = page.load("trends", cache.trend, bucket, filters)
    if trend is not None:
        signal_tab, events_tab, precision_tab = st.tabs(
            ["Average signal (dBm)", "Events", "GPS precision (m)"]
        )
        signal_tab.plotly_chart(
            charts.operator_lines(trend, "avg_signal_dbm", "average signal (dBm)", "dBm"),
            width="stretch",
        )
        events_tab.plotly_chart(charts.events_stacked(trend), width="stretch")
        with precision_tab:
            if by_postal_code:
                panels.not_by_postal_code("GPS precision")
            else:
                st.plotly_chart(
                    charts.operator_lines(
                        trend, "avg_precision_m", "average GPS accuracy radius (m)", "m"
                    ),
                    width="stretch",
                )
        st.download_button(
            "Download trend CSV",
            trend.to_csv(index=False).encode("utf-8"),
            file_name=f"operator_trend_{bucket.replace(' ', '')}_{file_suffix}.csv",
            mime="text/csv",
            key="download_trend",
            on_click="ignore",
            icon=":material/download:",
        )

# --- network status -------------------------------------------------------------------------
st.subheader(
    "Network status per postal code",
    help="Events per Android service state: IN_SERVICE, OUT_OF_SERVICE, EMERGENCY_ONLY, "
    "POWER_OFF. Events without a postal code are grouped as (none). The heatmap shades each "
    "cell by that state's share of the postal code's events.",
)
if status is not None:
    wide = pivot_status(status)
    busiest = wide.nlargest(HEATMAP_POSTAL_CODES, "events", keep="first")
    heatmap_rows = wide[wide["postal_code"].isin(busiest["postal_code"])]
    chart, table = st.columns([3, 2])
    chart.caption(
        f"The {len(heatmap_rows)} busiest of {len(wide):,} postal codes, highest "
        "out-of-service share on top."
    )
    chart.plotly_chart(charts.status_heatmap(heatmap_rows), width="stretch")
    with table:
        st.caption("Every postal code, highest out-of-service share first.")
        panels.table_with_download(
            wide,
            file_name=f"status_by_postal_code_{file_suffix}.csv",
            key="download_status",
            column_config={
                "postal_code": "Postal code",
                **{
                    label: st.column_config.NumberColumn(
                        label.replace("_", " ").capitalize(), **COUNT
                    )
                    for label in STATUS_LABELS.values()
                },
                "events": st.column_config.NumberColumn("Events", **COUNT),
                "in_service_share": st.column_config.ProgressColumn(
                    "In service", format="percent", min_value=0.0, max_value=1.0
                ),
                "out_of_service_share": st.column_config.ProgressColumn(
                    "Out of service", format="percent", min_value=0.0, max_value=1.0
                ),
            },
        )
