"""Map helpers (presentation layer): the pydeck deck, its view, and the
session state that keeps the map's view and selection across refreshes.

The deck draws coverage cells (H3 hexagons, ``backend.map_data.query_cells``) under the
postal-code points; a click on either selects it, and the page shows its breakdown.

The browser keeps the user's zoom and pan for as long as the chart element lives and its
``initialViewState`` does not change, so the initial view is computed once and kept in
session state, and the chart keeps one key. Streamlit identifies a selected point by its
index in the layer's data, so rows keep their position for the whole session: postal
codes are appended as they appear, and one that drops out of the window stays as an
invisible placeholder. A refresh therefore never moves the selection to another code.

Why one module of about 500 lines: the row order, the deck, the kept view and the selection
callbacks are one mechanism (a selection is a row index or a picked cell), so they live and
are tested together; colours are apart in ``dashboard.map_colors``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import pydeck as pdk
import streamlit as st

from backend import map_data
from dashboard import map_colors
from dashboard.charts import STATUS_COLORS, bucket_step, with_gaps
from glue_job.contract import STATUS_LABELS

LAYER_ID = "postal-codes"
RING_LAYER_ID = "selected-postal-code"
CELL_LAYER_ID = "coverage-cells"
COLOR_KEY = "tp_map_color"  # colour-by control
RESOLUTION_KEY = "tp_map_cells"  # coverage-cell size control
CELL_KEY = "tp_map_cell"  # the chosen coverage cell (a click chose it)
PICK_KEY = "tp_map_pick"  # postal-code select box
SELECTED_KEY = "tp_map_postal"  # the chosen postal code, whichever control chose it
_VIEW_KEY = "tp_map_view"
_GENERATION_KEY = "tp_map_generation"
_ORDER_KEY = "tp_map_order"
_FOCUS_KEY = "tp_map_focus"
MAP_HEIGHT = 520
# Point radius in screen pixels: the busiest postal code gets the largest.
MIN_RADIUS_PX = 4.0
MAX_RADIUS_PX = 20.0
FOCUS_ZOOM = 10.0
RING_COLOR = [255, 75, 75, 255]  # Streamlit's primary red reads on light and dark maps
_PLAIN_CODE = re.compile(r"[0-9A-Za-z][0-9A-Za-z -]{0,19}")
_TREND_HEIGHT = 320
# The coverage-cell sizes on offer (``contract.H3_RESOLUTIONS``), coarsest first: a whole
# region's worth at a glance, then street-level detail when zoomed in. 0 hides the cells.
CELL_SIZES: dict[int, str] = {6: "about 6 km", 8: "about 1 km", 0: "off"}
DEFAULT_RESOLUTION = 6
CELL_OUTLINE = [255, 255, 255, 160]
# The Deck arguments of each basemap setting (TELCOPULSE_BASEMAP).
BASEMAPS: dict[str, dict[str, str | None]] = {
    "carto": {"map_provider": "carto", "map_style": pdk.map_styles.CARTO_LIGHT},
    "none": {"map_provider": None, "map_style": None},
}


# --- points and deck ----------------------------------------------------------------------


def arrange(points: pd.DataFrame, order: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """``points`` in a row order that only ever grows: known codes first, new ones appended.

    Codes in ``order`` that are not in ``points`` stay as placeholder rows with no events,
    so every code keeps its row index (which is how the chart names a selection).
    """
    known = set(order)
    order = [*order, *sorted(c for c in points["postal_code"] if c not in known)]
    arranged = points.set_index("postal_code").reindex(order).reset_index()
    absent = arranged["events"].isna()
    arranged.loc[absent, ["latitude", "longitude"]] = 0.0
    counts = ["events", "signal_samples", "out_of_service_events", "positions"]
    arranged[counts] = arranged[counts].fillna(0).astype("int64")
    return arranged, order


def deck_points(arranged: pd.DataFrame, scale: map_colors.ColorScale) -> pd.DataFrame:
    """What the layer draws: position, colour, pixel radius and tooltip texts per code."""
    busiest = max(int(arranged["events"].max()), 1) if len(arranged) else 1
    present = arranged["events"] > 0
    frame = pd.DataFrame(
        {
            "postal_code": arranged["postal_code"],
            "latitude": arranged["latitude"].round(6),
            "longitude": arranged["longitude"].round(6),
            "events": arranged["events"],
            "avg_signal_dbm": arranged["avg_signal_dbm"].round(2),
            "out_of_service_share": arranged["out_of_service_share"].round(4),
        }
    )
    radius = MIN_RADIUS_PX + (MAX_RADIUS_PX - MIN_RADIUS_PX) * (arranged["events"] / busiest).pow(
        0.5
    )
    frame["radius"] = radius.where(present, 0.0).round(1)
    frame["color"] = [
        map_colors.rgba(scale.color_of(value)) if keep else [0, 0, 0, 0]
        for value, keep in zip(arranged[scale.column], present, strict=True)
    ]
    frame["place"] = "Postal code " + arranged["postal_code"].astype(str)
    return _with_texts(frame, arranged)


def deck_cells(cells: pd.DataFrame, scale: map_colors.ColorScale, resolution: int) -> pd.DataFrame:
    """What the hexagon layer draws: the H3 cell, its colour and tooltip texts."""
    frame = pd.DataFrame({"cell": cells["cell"], "events": cells["events"]})
    frame["color"] = [map_colors.rgba(scale.color_of(value)) for value in cells[scale.column]]
    frame["place"] = f"Cell {CELL_SIZES[resolution]} across · " + cells["cell"].astype(str)
    return _with_texts(frame, cells)


def _with_texts(frame: pd.DataFrame, figures: pd.DataFrame) -> pd.DataFrame:
    """The tooltip's texts of each row, from its figures; JSON-ready (no NaN)."""
    frame["events_text"] = figures["events"].map("{:,}".format)
    frame["signal_text"] = [
        "no reading" if pd.isna(v) else f"{v:.1f} dBm" for v in figures["avg_signal_dbm"]
    ]
    frame["outage_text"] = [
        "—" if pd.isna(v) else f"{100 * v:.1f} %" for v in figures["out_of_service_share"]
    ]
    # JSON has no NaN: missing figures travel as null.
    return frame.astype(object).where(frame.notna(), None)


def build_deck(
    points: pd.DataFrame,
    view: Mapping[str, float],
    selected: str | None,
    basemap: str = "carto",
    *,
    cells: pd.DataFrame | None = None,
    selected_cell: str | None = None,
) -> pdk.Deck:
    """The deck: CARTO's light basemap under the layers (``basemap="carto"``: no token, the
    viewer's browser loads the tiles), or the layers alone (``"none"``, for sites without
    internet access: the map stays usable, without coastlines or streets). Coverage cells
    (``deck_cells``), when given, lie under the points, which become rings; the chosen cell
    is outlined."""
    layers = []
    with_cells = cells is not None and len(cells) > 0
    if with_cells:
        layers.append(
            pdk.Layer(
                "H3HexagonLayer",
                data=cells,
                id=CELL_LAYER_ID,
                get_hexagon="cell",
                get_fill_color="color",
                get_line_color=CELL_OUTLINE,
                line_width_min_pixels=1,
                stroked=True,
                filled=True,
                extruded=False,
                opacity=0.55,
                pickable=True,
                auto_highlight=True,
            )
        )
        chosen = cells[cells["cell"] == selected_cell]
        if selected_cell is not None and len(chosen):
            layers.append(
                pdk.Layer(
                    "H3HexagonLayer",
                    data=chosen[["cell"]],
                    id=f"{CELL_LAYER_ID}-chosen",
                    get_hexagon="cell",
                    filled=False,
                    stroked=True,
                    extruded=False,
                    get_line_color=RING_COLOR,
                    line_width_min_pixels=3,
                    pickable=False,
                )
            )
    layers.append(
        pdk.Layer(
            "ScatterplotLayer",
            data=points,
            id=LAYER_ID,
            get_position=["longitude", "latitude"],
            get_fill_color="color",
            get_line_color="color",
            get_radius="radius",
            radius_units="'pixels'",
            radius_min_pixels=0,
            # Over the cells a point is a ring in its colour, so the cells show through it.
            filled=not with_cells,
            stroked=with_cells,
            line_width_units="'pixels'",
            get_line_width=2,
            pickable=True,
            auto_highlight=True,
        )
    )
    ring = points[(points["postal_code"] == selected) & (points["events"] > 0)]
    if selected is not None and len(ring):
        layers.append(
            pdk.Layer(
                "ScatterplotLayer",
                data=ring[["postal_code", "latitude", "longitude", "radius"]],
                id=RING_LAYER_ID,
                get_position=["longitude", "latitude"],
                get_radius="radius",
                radius_units="'pixels'",
                radius_min_pixels=MIN_RADIUS_PX + 3,
                filled=False,
                stroked=True,
                get_line_color=RING_COLOR,
                line_width_units="'pixels'",
                get_line_width=3,
                pickable=False,
            )
        )
    return pdk.Deck(
        layers=layers,
        initial_view_state=pdk.ViewState(**view),
        **BASEMAPS[basemap],
        tooltip={
            # Text, not HTML: a postal code is shown as typed, never interpreted.
            "text": "{place}\n{events_text} events\n"
            "Avg signal {signal_text}\nOut of service {outage_text}",
            "style": {"fontSize": "0.8rem"},
        },
    )


def fit_view(points: pd.DataFrame, width_px: int = 900, height_px: int = MAP_HEIGHT) -> dict:
    """Centre and zoom that frame every postal code, unless a few far-away ones would shrink
    the rest to a dot: then the central 90 % (Reset view and zooming out show the others)."""
    shown = points[points["events"] > 0]
    if shown.empty:
        return {"latitude": 0.0, "longitude": 0.0, "zoom": 1.0, "pitch": 0, "bearing": 0}
    lat, lon = _bounds(shown["latitude"], 0.0), _bounds(shown["longitude"], 0.0)
    if len(shown) >= 20:
        core_lat, core_lon = _bounds(shown["latitude"], 0.05), _bounds(shown["longitude"], 0.05)
        if _span(lat) > 4 * _span(core_lat) or _span(lon) > 4 * _span(core_lon):
            lat, lon = core_lat, core_lon
    lat_span = max(_mercator(lat[1]) - _mercator(lat[0]), 1e-4)
    lon_span = max(lon[1] - lon[0], 0.01)
    # deck.gl's world is 512 px wide at zoom 0; keep a 15 % margin.
    zoom_lon = math.log2(width_px * 360 / (512 * lon_span * 1.15))
    zoom_lat = math.log2(height_px * 2 * math.pi / (512 * lat_span * 1.15))
    return {
        "latitude": round(_unmercator((_mercator(lat[0]) + _mercator(lat[1])) / 2), 5),
        "longitude": round((lon[0] + lon[1]) / 2, 5),
        "zoom": round(max(1.0, min(zoom_lon, zoom_lat, 12.0)), 2),
        "pitch": 0,
        "bearing": 0,
    }


def focus_view(points: pd.DataFrame, code: str, current: Mapping[str, float]) -> dict:
    """The current view moved to centre on ``code``, zoomed in to at least ``FOCUS_ZOOM``."""
    row = points[(points["postal_code"] == code) & (points["events"] > 0)]
    if row.empty:
        return dict(current)
    return {
        **current,
        "latitude": round(float(row["latitude"].iloc[0]), 5),
        "longitude": round(float(row["longitude"].iloc[0]), 5),
        "zoom": max(float(current.get("zoom", 1.0)), FOCUS_ZOOM),
    }


def code_from_selection(selection: Mapping[str, Any] | None, order: list[str]) -> str | None:
    """The postal code a chart selection points at, or ``None`` when nothing is selected."""
    if not selection:
        return None
    objects = (selection.get("objects") or {}).get(LAYER_ID) or []
    if objects and isinstance(objects[0], Mapping) and objects[0].get("postal_code"):
        return str(objects[0]["postal_code"])
    indices = (selection.get("indices") or {}).get(LAYER_ID) or []
    if indices and 0 <= int(indices[0]) < len(order):
        return order[int(indices[0])]
    return None


def cell_from_selection(selection: Mapping[str, Any] | None) -> str | None:
    """The coverage cell a chart selection points at (the picked object names it)."""
    objects = ((selection or {}).get("objects") or {}).get(CELL_LAYER_ID) or []
    if objects and isinstance(objects[0], Mapping) and objects[0].get("cell"):
        return str(objects[0]["cell"])
    return None


def _mercator(latitude: float) -> float:
    clamped = max(min(latitude, 85.0), -85.0)
    return math.log(math.tan(math.pi / 4 + math.radians(clamped) / 2))


def _unmercator(y: float) -> float:
    return math.degrees(2 * math.atan(math.exp(y)) - math.pi / 2)


def _bounds(values: pd.Series, cut: float) -> tuple[float, float]:
    low, high = values.astype(float).quantile([cut, 1 - cut])
    return float(low), float(high)


def _span(bounds: tuple[float, float]) -> float:
    return bounds[1] - bounds[0]


# --- session state ------------------------------------------------------------------------


def color_scale_control() -> map_colors.ColorScale:
    """Colour-by control; its value outlives reruns and page switches (a shadow key)."""
    shadow = f"_{COLOR_KEY}"
    kept = st.session_state.get(shadow, map_colors.DEFAULT_SCALE)
    st.session_state[COLOR_KEY] = kept if kept in map_colors.SCALES else map_colors.DEFAULT_SCALE
    choice = st.segmented_control(
        "Colour by",
        list(map_colors.SCALES),
        format_func=lambda key: map_colors.SCALES[key].name,
        required=True,
        key=COLOR_KEY,
        on_change=_remember_scale,
        help=f"**{map_colors.SIGNAL_SCALE.name}**: {map_colors.SIGNAL_SCALE.help}  \n"
        f"**{map_colors.OUTAGE_SCALE.name}**: {map_colors.OUTAGE_SCALE.help}",
    )
    choice = choice if choice in map_colors.SCALES else map_colors.DEFAULT_SCALE
    st.session_state[shadow] = choice
    return map_colors.SCALES[choice]


def _remember_scale() -> None:
    st.session_state[f"_{COLOR_KEY}"] = st.session_state.get(COLOR_KEY)


def kept_resolution() -> int:
    """The coverage-cell size this run draws, before its control is drawn (a change is
    kept by the control's callback, which runs before the script)."""
    kept = st.session_state.get(f"_{RESOLUTION_KEY}", DEFAULT_RESOLUTION)
    return kept if kept in CELL_SIZES else DEFAULT_RESOLUTION


def resolution_control() -> int:
    """Coverage-cell size control (an H3 resolution, 0 for none); kept like the colour."""
    shadow = f"_{RESOLUTION_KEY}"
    st.session_state[RESOLUTION_KEY] = kept_resolution()
    choice = st.segmented_control(
        "Coverage cells",
        list(CELL_SIZES),
        format_func=CELL_SIZES.get,
        required=True,
        key=RESOLUTION_KEY,
        on_change=_remember_resolution,
        help="Hexagons of the H3 grid, coloured like the points, from the events that "
        "carried a position. Pick the small ones when zoomed in to a town.",
    )
    choice = choice if choice in CELL_SIZES else DEFAULT_RESOLUTION
    st.session_state[shadow] = choice
    return choice


def _remember_resolution() -> None:
    st.session_state[f"_{RESOLUTION_KEY}"] = st.session_state.get(RESOLUTION_KEY)
    st.session_state[CELL_KEY] = None  # a cell of the other size is not on the map any more
    new_chart()


def selected_code() -> str | None:
    code = st.session_state.get(SELECTED_KEY)
    return code if isinstance(code, str) and code else None


def selected_cell() -> str | None:
    cell = st.session_state.get(CELL_KEY)
    return cell if isinstance(cell, str) and cell else None


def postal_code_picker(codes: list[str]) -> None:
    """Select box over the mapped codes, showing the chosen code whichever way it was chosen."""
    chosen = selected_code()
    st.session_state[PICK_KEY] = chosen if chosen in codes else None
    st.selectbox(
        "Postal code",
        codes,
        index=None,
        key=PICK_KEY,
        placeholder="Click a point or type a postal code",
        on_change=_picked,
        help="Shows the postal code's status breakdown, operators and trend below, and "
        "centres the map on it.",
    )


def _picked() -> None:
    code = st.session_state.get(PICK_KEY)
    st.session_state[SELECTED_KEY] = code
    st.session_state[CELL_KEY] = None
    if code is not None:
        st.session_state[_FOCUS_KEY] = code
    new_chart()  # drops a point clicked before, which would contradict the box


def clear_selection() -> None:
    st.session_state[SELECTED_KEY] = None
    st.session_state[CELL_KEY] = None
    new_chart()


def reset_view() -> None:
    st.session_state.pop(_VIEW_KEY, None)
    new_chart()


def new_chart() -> None:
    """A fresh chart element: it forgets the browser's selection and takes the kept view."""
    st.session_state[_GENERATION_KEY] = st.session_state.get(_GENERATION_KEY, 0) + 1


def chart_key() -> str:
    return f"tp_map_deck_{st.session_state.get(_GENERATION_KEY, 0)}"


def stable_points(points: pd.DataFrame, engine_key: str) -> pd.DataFrame:
    """``arrange`` with the row order this session has used so far for this data source."""
    kept = st.session_state.get(_ORDER_KEY)
    order = kept[1] if kept and kept[0] == engine_key else []
    arranged, order = arrange(points, order)
    st.session_state[_ORDER_KEY] = (engine_key, order)
    return arranged


def kept_view(points: pd.DataFrame, engine_key: str) -> dict:
    """The view the chart starts from: fitted once, moved only when a code is picked."""
    kept = st.session_state.get(_VIEW_KEY)
    view = kept[1] if kept and kept[0] == engine_key else fit_view(points)
    focus = st.session_state.pop(_FOCUS_KEY, None)
    if focus is not None:
        view = focus_view(points, focus, view)
    st.session_state[_VIEW_KEY] = (engine_key, view)
    return view


def on_chart_select(key: str) -> Callable[[], None]:
    """Callback for the chart: a click selects that point's code or that cell (a point lies
    over its cell, so it wins), a click elsewhere clears."""

    def select() -> None:
        state = st.session_state.get(key)
        kept = st.session_state.get(_ORDER_KEY)
        order = kept[1] if kept else []
        selection = state.get("selection") if isinstance(state, Mapping) else None
        code = code_from_selection(selection, order)
        st.session_state[SELECTED_KEY] = code
        st.session_state[CELL_KEY] = None if code else cell_from_selection(selection)

    return select


# --- text and charts ----------------------------------------------------------------------


def show_code(code: str) -> str:
    """A postal code for markdown: as is when plain, else as inert inline code."""
    if _PLAIN_CODE.fullmatch(code):
        return code
    shown = code if len(code) <= 40 else code[:39] + "…"
    return "`" + shown.replace("`", "'") + "`"


def excluded_caption(postal: map_data.PostalMap) -> str:
    parts = []
    if postal.without_postal_code:
        parts.append(f"{postal.without_postal_code:,} without a postal code")
    if postal.without_position:
        codes = postal.codes_without_position
        parts.append(
            f"{postal.without_position:,} in {codes:,} postal code{'s' * (codes != 1)} "
            "where no event carried a position"
        )
    text = (
        f"{postal.excluded:,} of {postal.events:,} events are not on the map: "
        f"{' and '.join(parts)}."
        if parts
        else f"All {postal.events:,} events in the window are on the map."
    )
    if postal.unplaced_in_mapped:
        text += (
            f" {postal.unplaced_in_mapped:,} events without a position count towards their "
            "postal code but not its centroid."
        )
    return text


def trend_figure(trend: pd.DataFrame, bucket: str) -> go.Figure:
    """Events per bucket stacked by status, with the average signal on a second axis."""
    figure = go.Figure()
    for label in STATUS_LABELS.values():
        if not trend[label].any():
            continue
        figure.add_bar(
            name=label,
            x=trend["bucket"],
            y=trend[label],
            marker_color=STATUS_COLORS.get(label),
            hovertemplate=f"{label}: %{{y:,}} events<br>%{{x}}<extra></extra>",
        )
    signal = trend.dropna(subset=["avg_signal_dbm"])
    if len(signal):
        x, y = with_gaps(signal, "avg_signal_dbm", bucket_step(trend["bucket"]))
        figure.add_scatter(
            name="avg signal (dBm)",
            x=x,
            y=y,
            yaxis="y2",
            mode="lines+markers",
            marker_size=4,
            line_color="#3969AC",
            hovertemplate="avg signal: %{y:.1f} dBm<br>%{x}<extra></extra>",
        )
    figure.update_layout(
        barmode="stack",
        bargap=0.1,
        height=_TREND_HEIGHT,
        margin={"l": 0, "r": 10, "t": 10, "b": 0},
        xaxis={"title": f"event time (UTC), per {bucket}"},
        yaxis={"title": "events"},
        yaxis2={"title": "avg signal (dBm)", "overlaying": "y", "side": "right", "showgrid": False},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0, "title": None},
    )
    return figure
