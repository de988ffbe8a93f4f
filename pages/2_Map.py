"""Map page (dashboard): postal-code centroids from gold, coloured by signal or outage share."""

import streamlit as st

from backend import map_data
from backend.home import query_headline
from backend.windows import pick_bucket
from dashboard import charts, map_colors, panels
from dashboard import map as map_ui
from dashboard.page import current_page

page = current_page()

st.title("Map")
page.require_data()
st.caption(
    f"{panels.describe_window(page.preset, page.window)} · each point is a postal code, placed "
    "at the mean position its events reported; its size is the number of events. Click a point "
    "or pick a code to see its status breakdown, operators and trend."
)
headline = page.load("headline KPIs", query_headline)
if headline is not None and headline.is_empty:
    panels.empty_window(page.preset, page.freshness())
    st.stop()
postal = page.load("postal-code map", map_data.query_postal_map)
if postal is None:
    st.stop()
if postal.is_empty:
    panels.empty_window(page.preset, page.freshness())
    st.stop()
if postal.points.empty:
    st.info(
        "No event in this window carried both a postal code and a position, so there is "
        "nothing to place on the map. Pick a wider time range in the sidebar.",
        icon=":material/location_off:",
    )
    st.caption(map_ui.excluded_caption(postal))
    st.stop()

# --- the map --------------------------------------------------------------------------------
points = map_ui.stable_points(postal.points, page.engine_key)
codes = postal.points["postal_code"].tolist()
color_col, pick_col, button_col = st.columns([2, 2, 1], vertical_alignment="bottom")
with color_col:
    scale = map_ui.color_scale_control()
with pick_col:
    map_ui.postal_code_picker(codes)
chosen = map_ui.selected_code()
with button_col:
    st.button(
        "Reset view",
        on_click=map_ui.reset_view,
        icon=":material/zoom_out_map:",
        help="Zoom back out to frame every postal code.",
    )

legend = map_colors.legend_html(scale, int(postal.points["events"].max()))
st.markdown(legend, unsafe_allow_html=True)
view = map_ui.kept_view(points, page.engine_key)
key = map_ui.chart_key()
st.pydeck_chart(
    map_ui.build_deck(map_ui.deck_points(points, scale), view, chosen, page.settings.basemap),
    key=key,
    on_select=map_ui.on_chart_select(key),
    selection_mode="single-object",
    height=map_ui.MAP_HEIGHT,
    alt="Map of postal-code centroids; colour shows "
    f"{scale.name.lower()}, size the number of events",
)
st.caption(map_ui.excluded_caption(postal))

# --- one postal code ------------------------------------------------------------------------
code = chosen or map_data.busiest_postal_code(postal.points)
if chosen is None:
    st.subheader(
        f"Busiest postal code: {map_ui.show_code(code)}",
        help="Nothing chosen yet, so this shows the postal code with the most events.",
    )
else:
    title, clear = st.columns([4, 1], vertical_alignment="bottom")
    title.subheader(f"Postal code {map_ui.show_code(code)}")
    clear.button("Clear selection", on_click=map_ui.clear_selection, icon=":material/close:")

detail = page.load("the postal code's breakdown", map_data.query_postal_detail, code)
if detail is None:
    st.stop()
if detail.is_empty:
    st.info(
        f"No events for postal code {map_ui.show_code(code)} in the chosen time range. "
        "Pick another code or a wider time range.",
        icon=":material/filter_alt_off:",
    )
    st.stop()

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
    help="Share of the postal code's events whose status was OUT_OF_SERVICE.",
    border=True,
)
cards[3].metric("Operators", f"{len(detail.operators):,}", border=True)

status_col, operator_col = st.columns([2, 3])
with status_col:
    st.markdown(
        "**Status breakdown**",
        help="Events per Android service state in this postal code over the window.",
    )
    st.dataframe(
        detail.status[["status_label", "events", "share"]],
        hide_index=True,
        width="stretch",
        column_config={
            "status_label": "Status",
            "events": st.column_config.NumberColumn("Events", format="localized"),
            "share": st.column_config.ProgressColumn(
                "Share", format="percent", min_value=0.0, max_value=1.0
            ),
        },
    )
with operator_col:
    st.markdown(
        "**Operators**",
        help="Events and Σ signal / Σ readings (dBm) per operator in this postal code.",
    )
    st.dataframe(
        detail.operators,
        hide_index=True,
        width="stretch",
        column_config={
            "operator": "Operator",
            "events": st.column_config.NumberColumn("Events", format="localized"),
            "avg_signal_dbm": st.column_config.NumberColumn("Avg signal", format="%.1f dBm"),
            "signal_samples": st.column_config.NumberColumn("Readings", format="localized"),
            "out_of_service_share": st.column_config.ProgressColumn(
                "Out of service", format="percent", min_value=0.0, max_value=1.0
            ),
        },
    )

with_signal = detail.operators.dropna(subset=["avg_signal_dbm"])
if len(with_signal):
    st.plotly_chart(
        charts.signal_bars(with_signal),
        width="stretch",
        key="map_operator_signal",
    )

bucket = pick_bucket(detail.first_minute, detail.last_minute)
st.markdown(
    f"**Events per {bucket} by status, and average signal**",
    help="Bars: events per status in each bucket (UTC). Line: Σ signal / Σ readings in dBm.",
)
trend = page.load("the postal code's trend", map_data.query_postal_trend, code, bucket)
if trend is not None:
    st.plotly_chart(map_ui.trend_figure(trend, bucket), width="stretch", key="map_trend")
page.show_query_times()
