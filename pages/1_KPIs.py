"""KPIs page (dashboard): signal, signal bands and GPS precision per operator, trends, and
network status per postal code, filtered by operator and postal code."""

import streamlit as st

from backend import kpis
from backend.home import query_headline
from backend.windows import pick_bucket
from dashboard import charts, columns, controls, panels
from dashboard.page import current_page
from dashboard.panels import ChartTable
from glue_job.contract import STATUS_LABELS

READINGS = columns.count("Readings")
# The per-operator blocks, top to bottom: each a chart beside its downloadable table.
PER_OPERATOR = (
    ChartTable(
        title="Average signal strength per operator",
        what="signal_by_operator",
        figure=charts.signal_bars,
        help=panels.signal_help(),
        columns={
            "operator": "Operator",
            "avg_signal_dbm": columns.measure("Avg signal", "dBm"),
            "signal_samples": READINGS,
        },
        empty="No signal readings in this window.",
    ),
    ChartTable(
        title="Signal quality per operator",
        what="signal_bands_by_operator",
        figure=charts.band_bars,
        help="Share of each operator's signal readings per band: excellent ≥ −80 dBm, good −80 "
        "to −90, fair −90 to −100, poor below −100. Best operators on top.",
        columns={
            "operator": "Operator",
            **{band: columns.count(band.capitalize()) for band in kpis.BANDS},
            "signal_samples": READINGS,
        },
        empty="No signal readings in this window.",
        not_by_postal_code="signal bands",
    ),
    ChartTable(
        title="Average GPS precision per operator",
        what="gps_precision_by_operator",
        figure=charts.precision_bars,
        help="GPS horizontal accuracy radius in metres: the device is within this distance of "
        "the reported position with 68 % confidence. Smaller is more precise.",
        columns={
            "operator": "Operator",
            "avg_precision_m": columns.measure("Avg precision", "m"),
            "precision_samples": READINGS,
        },
        empty="No GPS precision readings in this window.",
        not_by_postal_code="GPS precision",
    ),
)
QUERIES = {
    "signal_by_operator": ("signal by operator", kpis.query_signal),
    "signal_bands_by_operator": ("signal bands by operator", kpis.query_signal_bands),
    "gps_precision_by_operator": ("GPS precision by operator", kpis.query_precision),
}

page = current_page()

st.title("KPIs")
st.caption(
    "Signal strength in dBm (−140 to −30; closer to 0 is stronger), GPS precision as the "
    "accuracy radius in metres (smaller is better), network status as event counts. Averages "
    "are Σ values / Σ readings over one-minute partial aggregates, never averages of averages. "
    "Times are event times, UTC."
)
page.require_data()
# The headline and the filter choices at once (Page.warm), then each from the cache.
page.warm((query_headline,), (kpis.query_choices,))
headline = page.load("headline KPIs", query_headline)
if headline is not None and headline.is_empty:
    panels.empty_window(page.preset, page.freshness())
    st.stop()

filters = controls.kpi_filters(page.load("filter choices", kpis.query_choices))
by_postal_code = bool(filters.postal_codes)
st.caption(
    f"{panels.describe_window(page.preset, page.window).capitalize()} · "
    f"{panels.describe_filters(filters)}"
)
file_suffix = page.preset.replace(" ", "") + ("_filtered" if not filters.is_empty else "")
per_operator = [s for s in PER_OPERATOR if not (by_postal_code and s.not_by_postal_code)]
bucket = None if headline is None else pick_bucket(headline.first_minute, headline.last_minute)
# Every filtered query at once, then each from the cache as the page draws it.
page.warm(
    (kpis.query_status, filters),
    *((QUERIES[spec.what][1], filters) for spec in per_operator),
    *([(kpis.query_trend, bucket, filters)] if bucket else []),
)
status = page.load("network status by postal code", kpis.query_status, filters)
if status is not None and status.empty:
    st.info(
        "No events match these filters in this time range. Clear a filter or pick a wider "
        "range in the sidebar.",
        icon=":material/filter_alt_off:",
    )
    st.stop()

frames = {
    spec.what: page.load(QUERIES[spec.what][0], QUERIES[spec.what][1], filters)
    for spec in per_operator
}
panels.chart_tables(PER_OPERATOR, frames, file_suffix, by_postal_code)

# --- trends ---------------------------------------------------------------------------------
if bucket is not None:
    st.subheader(
        f"Trends per operator, per {bucket}",
        help="Each point is one bucket's ratio of sums. The bucket grows with the span of the "
        "data in range: a minute up to 3 h, 5 min up to 24 h, an hour up to 14 days, then a day.",
    )
    trend = page.load("trends", kpis.query_trend, bucket, filters)
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
            panels.csv_download(trend),
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
    wide = kpis.pivot_status(status)
    heatmap_rows = kpis.heatmap_rows(wide)
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
                    label: columns.count(label.replace("_", " ").capitalize())
                    for label in STATUS_LABELS.values()
                },
                "events": columns.count("Events"),
                "in_service_share": columns.share("In service"),
                "out_of_service_share": columns.share("Out of service"),
            },
        )
page.show_query_times()
