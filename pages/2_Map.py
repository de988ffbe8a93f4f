"""Map page (dashboard): coverage hexagons and postal-code centroids from gold, coloured by
signal or outage share; a click shows one cell's or postal code's breakdown."""

import streamlit as st

from backend import map_data
from dashboard import map as map_ui
from dashboard import map_colors, panels
from dashboard.map_detail import show_area
from dashboard.page import current_page

page = current_page()

st.title("Map")
page.require_data()
st.caption(
    f"{panels.describe_window(page.preset, page.window)} · each point is a postal code, placed "
    "at the mean position its events reported; its size is the number of events. Hexagons are "
    "coverage cells of the H3 grid, from the events' own positions. Click a point or a cell, "
    "or pick a code, to see its status breakdown, operators and trend."
)
# The postal codes and the coverage cells at once (Page.warm), then each from the cache.
resolution = map_ui.kept_resolution()
page.warm(
    (map_data.query_postal_map,), *([(map_data.query_cells, resolution)] if resolution else [])
)
# The postal-code map counts every event of the window, so it also says when it is empty.
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
color_col, size_col, pick_col, button_col = st.columns([2, 2, 2, 1], vertical_alignment="bottom")
with color_col:
    scale = map_ui.color_scale_control()
with size_col:
    resolution = map_ui.resolution_control()
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

cells = None
if resolution:
    found = page.load("coverage cells", map_data.query_cells, resolution)
    if found is not None:
        cells = map_ui.deck_cells(found, scale, resolution)
chosen_cell = map_ui.selected_cell()
legend = map_colors.legend_html(scale, int(postal.points["events"].max()))
st.markdown(legend, unsafe_allow_html=True)
view = map_ui.kept_view(points, page.engine_key)
key = map_ui.chart_key()
deck = map_ui.build_deck(
    map_ui.deck_points(points, scale),
    view,
    chosen,
    page.settings.basemap,
    cells=cells,
    selected_cell=chosen_cell,
)
st.pydeck_chart(
    deck,
    key=key,
    on_select=map_ui.on_chart_select(key),
    selection_mode="single-object",
    height=map_ui.MAP_HEIGHT,
    alt="Map of postal-code centroids over coverage hexagons; colour shows "
    f"{scale.name.lower()}, a point's size the number of events",
)
st.caption(map_ui.excluded_caption(postal))

# --- one coverage cell or postal code -------------------------------------------------------
if chosen_cell is not None:
    title, clear = st.columns([4, 1], vertical_alignment="bottom")
    title.subheader(
        f"Coverage cell {chosen_cell}",
        help="An H3 cell: the events whose position lies in this hexagon, whatever their "
        "postal code.",
    )
    clear.button("Clear selection", on_click=map_ui.clear_selection, icon=":material/close:")
    detail = page.load("the cell's breakdown", map_data.query_cell_detail, chosen_cell)
    show_area(page, detail, noun="this cell", trend=map_data.query_cell_trend)
else:
    code = chosen or map_data.busiest_postal_code(postal.points)
    # Its breakdown and its trend at once, the trend at the bucket the map's periods
    # suggest (show_area picks it from the breakdown's exact span: nearly always the same).
    bucket = map_data.likely_bucket(postal.points, code)
    if bucket is not None:
        page.warm(
            (map_data.query_postal_detail, code),
            (map_data.query_postal_trend, code, bucket),
        )
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
    show_area(
        page,
        detail,
        noun=f"postal code {map_ui.show_code(code)}",
        trend=map_data.query_postal_trend,
    )
page.show_query_times()
