"""The Map page, run headlessly with AppTest against the lake the real job built.

What the page draws is compared with pandas over mobile-logs.csv itself, so neither the
job nor the SQL checks its own work. Only the environment (which lake) and, for the
failure case, the engine's ``run`` are touched.
"""

from __future__ import annotations

import json

import h3
import pandas as pd
import pydeck as pdk
import pytest
import streamlit as st
from helpers import MOBILE_LOGS
from page_helpers import (
    assert_each_query_once_warm,
    metric,
    open_page,
    refresh_recording_queries,
    texts,
)
from streamlit.testing.v1 import AppTest

from backend.engine import DuckDBEngine, QueryError
from dashboard import map as map_ui
from dashboard import map_colors

MAP = "pages/2_Map.py"
HOSTILE = "<img src=x onerror=alert(1)>' OR 1=1--"


@pytest.fixture(scope="module")
def csv_codes() -> pd.DataFrame:
    """Per postal code, from the CSV rows the contract accepts: centroid, events, operators."""
    rows = pd.read_csv(MOBILE_LOGS)
    valid = rows[rows["operator"].notna() & rows["signal"].between(0, 31)].copy()
    valid = valid[valid["postal_code"].notna()]
    valid["postal_code"] = valid["postal_code"].astype(int).astype(str).str.zfill(6)
    valid["signal_dbm"] = 2 * valid["signal"] - 113
    valid["operator_key"] = valid["operator"].str.strip().str.casefold()
    return valid


def open_map(monkeypatch, home, preset: str | None = "all") -> AppTest:
    at = open_page(monkeypatch, home, MAP, preset)
    assert not at.exception
    return at


def deck(at: AppTest):
    decks = at.get("deck_gl_json_chart")
    assert len(decks) == 1, "expected one map"
    return decks[0].proto


def deck_points(at: AppTest) -> pd.DataFrame:
    layers = {layer["id"]: layer for layer in json.loads(deck(at).json)["layers"]}
    points = pd.DataFrame(layers[map_ui.LAYER_ID]["data"])
    return points[points["events"] > 0].reset_index(drop=True)


def test_the_map_draws_postal_code_centroids_of_the_csv(monkeypatch, csv_lake, csv_codes):
    at = open_map(monkeypatch, csv_lake.parent)
    assert not at.error

    expected = (
        csv_codes.groupby("postal_code")
        .agg(latitude=("lat", "mean"), longitude=("long", "mean"), events=("lat", "size"))
        .reset_index()
    )
    shown = deck_points(at).sort_values("postal_code", ignore_index=True)
    assert shown["postal_code"].tolist() == expected["postal_code"].tolist()
    assert shown["events"].tolist() == expected["events"].tolist()
    for column in ("latitude", "longitude"):
        assert shown[column].to_numpy() == pytest.approx(expected[column].to_numpy(), abs=1e-6)
    # Size grows with events; every point is coloured by its average signal band.
    busiest = shown.loc[shown["events"].idxmax()]
    assert busiest["radius"] == map_ui.MAX_RADIUS_PX
    assert shown["radius"].min() >= map_ui.MIN_RADIUS_PX
    by_band = {tuple(map_colors.rgba(b.color)) for b in map_colors.SIGNAL_SCALE.bins}
    assert {tuple(c) for c in shown["color"]} <= by_band

    proto = deck(at)
    spec = json.loads(proto.json)
    # CARTO's light basemap by default: no token, the browser fetches the tiles.
    assert spec["mapProvider"] == "carto"
    assert spec["mapStyle"] == pdk.map_styles.CARTO_LIGHT
    assert not proto.mapbox_token
    tooltip = json.loads(proto.tooltip)
    assert set(tooltip) >= {"text"}, "a text tooltip never interprets a postal code as HTML"
    assert "{place}" in tooltip["text"]
    assert shown["place"].str.removeprefix("Postal code ").tolist() == shown["postal_code"].tolist()
    assert "{signal_text}" in tooltip["text"]
    assert "{outage_text}" in tooltip["text"]
    assert shown.loc[0, "signal_text"].endswith(" dBm")

    legend = texts(at.markdown)
    assert "Average signal (dBm)" in legend
    assert "events in the window" in legend
    assert "223 of 994 events are not on the map: 223 without a postal code." in texts(at.caption)


def test_without_a_choice_the_busiest_postal_code_is_shown(monkeypatch, csv_lake, csv_codes):
    at = open_map(monkeypatch, csv_lake.parent)
    counts = csv_codes["postal_code"].value_counts()
    busiest = counts.index[0]
    assert counts.iloc[0] > counts.iloc[1], "the fixture has one busiest code"
    assert f"Busiest postal code: {busiest}" in texts(at.subheader)
    assert metric(at, "Events") == f"{counts.iloc[0]:,}"
    assert at.selectbox(key=map_ui.PICK_KEY).value is None
    assert at.get("plotly_chart"), "the trend is drawn"


def test_choosing_a_postal_code_shows_its_breakdown(monkeypatch, csv_lake, csv_codes):
    at = open_map(monkeypatch, csv_lake.parent)
    code = csv_codes.groupby("postal_code")["operator_key"].nunique().sort_index().idxmax()
    rows = csv_codes[csv_codes["postal_code"] == code]
    assert rows["operator_key"].nunique() > 1

    at.selectbox(key=map_ui.PICK_KEY).set_value(code).run()
    assert not at.exception
    assert not at.error
    assert f"Postal code {code}" in texts(at.subheader)
    assert metric(at, "Events") == f"{len(rows):,}"
    assert metric(at, "Avg signal") == f"{rows['signal_dbm'].mean():.1f} dBm"
    assert metric(at, "Out of service") == "0.0 %"
    assert metric(at, "Operators") == str(rows["operator_key"].nunique())

    status = next(df.value for df in at.dataframe if "status_label" in df.value.columns)
    assert status.set_index("status_label")["events"].to_dict() == {
        "IN_SERVICE": len(rows),
        "OUT_OF_SERVICE": 0,
        "EMERGENCY_ONLY": 0,
        "POWER_OFF": 0,
    }
    operators = next(df.value for df in at.dataframe if "operator" in df.value.columns)
    expected = rows.groupby("operator_key")["signal_dbm"].agg(["size", "mean"])
    shown = operators.assign(key=operators["operator"].str.casefold()).set_index("key")
    assert shown["events"].to_dict() == expected["size"].to_dict()
    assert shown["avg_signal_dbm"].to_numpy() == pytest.approx(
        expected.loc[shown.index, "mean"].to_numpy()
    )

    # The map centres on the code and rings it.
    spec = json.loads(deck(at).json)
    centroid = rows[["lat", "long"]].mean()
    view = spec["initialViewState"]
    assert (view["latitude"], view["longitude"]) == pytest.approx(
        (centroid["lat"], centroid["long"]), abs=1e-4
    )
    assert view["zoom"] >= map_ui.FOCUS_ZOOM
    ring = next(layer for layer in spec["layers"] if layer["id"] == map_ui.RING_LAYER_ID)
    assert [p["postal_code"] for p in ring["data"]] == [code]

    next(b for b in at.button if b.label == "Clear selection").click().run()
    assert at.selectbox(key=map_ui.PICK_KEY).value is None
    assert any(s.startswith("Busiest postal code") for s in texts(at.subheader).splitlines())


def test_choice_colour_and_view_survive_refreshes_and_page_switches(
    monkeypatch, csv_lake, csv_codes
):
    at = open_map(monkeypatch, csv_lake.parent)
    code = sorted(csv_codes["postal_code"].unique())[5]
    at.selectbox(key=map_ui.PICK_KEY).set_value(code).run()
    at.segmented_control(key=map_ui.COLOR_KEY).set_value("outage").run()
    chart_id, spec = deck(at).id, json.loads(deck(at).json)

    at.run()  # what an auto-refresh does within one refresh interval
    st.cache_data.clear()  # and once the interval has passed
    at.run()
    for _ in range(2):
        assert at.selectbox(key=map_ui.PICK_KEY).value == code
        assert at.segmented_control(key=map_ui.COLOR_KEY).value == "outage"
        assert f"Postal code {code}" in texts(at.subheader)
        assert "Out-of-service share (% of events)" in texts(at.markdown)
        # Same element and the same initial view: the browser keeps the user's zoom and pan.
        assert deck(at).id == chart_id
        again = json.loads(deck(at).json)
        assert again["initialViewState"] == spec["initialViewState"]
        # The same layers; centroids may differ in the last digit (DuckDB sums floats in
        # parallel, in no fixed order).
        strip = [{k: v for k, v in layer.items() if k != "data"} for layer in spec["layers"]]
        assert [{k: v for k, v in la.items() if k != "data"} for la in again["layers"]] == strip
        for old, new in zip(spec["layers"], again["layers"], strict=True):
            pd.testing.assert_frame_equal(
                pd.DataFrame(new["data"]), pd.DataFrame(old["data"]), rtol=1e-6
            )
        at.switch_page("Home.py").run()
        at.switch_page(MAP).run()

    green = map_colors.rgba(map_colors.OUTAGE_SCALE.bins[0].color)
    assert all(color == green for color in deck_points(at)["color"])  # the CSV is all in service


def test_a_click_on_the_map_selects_that_points_postal_code():
    order = ["080001", "080002", "080003"]
    clicked = {
        "indices": {map_ui.LAYER_ID: [1]},
        "objects": {map_ui.LAYER_ID: [{"postal_code": "080002"}]},
    }
    assert map_ui.code_from_selection(clicked, order) == "080002"
    by_index = {"indices": {map_ui.LAYER_ID: [2]}, "objects": {}}
    assert map_ui.code_from_selection(by_index, order) == "080003"
    assert map_ui.code_from_selection({"indices": {}, "objects": {}}, order) is None
    assert map_ui.code_from_selection(None, order) is None
    assert map_ui.code_from_selection({"indices": {map_ui.LAYER_ID: [9]}}, order) is None


def test_rows_keep_their_index_as_postal_codes_come_and_go():
    def points(*codes):
        return pd.DataFrame(
            {
                "postal_code": list(codes),
                "latitude": 41.0,
                "longitude": 2.0,
                "events": 5,
                "avg_signal_dbm": -85.0,
                "signal_samples": 5,
                "out_of_service_events": 0,
                "out_of_service_share": 0.0,
                "positions": 5,
            }
        )

    _, order = map_ui.arrange(points("B", "D"), [])
    assert order == ["B", "D"]
    second, order = map_ui.arrange(points("A", "D", "C"), order)
    assert order == ["B", "D", "A", "C"]
    assert second["postal_code"].tolist() == order
    assert second["events"].tolist() == [0, 5, 5, 5]  # B left the window: a placeholder
    drawn = map_ui.deck_points(second, map_colors.SIGNAL_SCALE)
    assert drawn.loc[0, "radius"] == 0
    assert drawn.loc[0, "color"] == [0, 0, 0, 0]
    assert map_ui.fit_view(second)["latitude"] == pytest.approx(41.0)


def test_legends_name_their_units_and_follow_the_contracts_bands():
    labels = [b.label for b in map_colors.SIGNAL_SCALE.bins]
    assert labels == ["excellent ≥ −80", "good −90 to −80", "fair −100 to −90", "poor < −100"]
    assert map_colors.SIGNAL_SCALE.color_of(-80.0) == map_colors.SIGNAL_SCALE.bins[0].color
    assert map_colors.SIGNAL_SCALE.color_of(-80.01) == map_colors.SIGNAL_SCALE.bins[1].color
    assert map_colors.SIGNAL_SCALE.color_of(None) == map_colors.NO_READING_COLOR
    assert map_colors.OUTAGE_SCALE.color_of(0.2) == map_colors.OUTAGE_SCALE.bins[-1].color
    assert "(dBm)" in map_colors.legend_html(map_colors.SIGNAL_SCALE, 10)
    assert "(% of events)" in map_colors.legend_html(map_colors.OUTAGE_SCALE, 10)


def test_an_injection_string_as_postal_code_is_inert(monkeypatch, csv_lake):
    at = open_map(monkeypatch, csv_lake.parent)
    before = len(deck_points(at))
    at.session_state[map_ui.SELECTED_KEY] = HOSTILE
    at.run()
    assert not at.exception
    assert not at.error
    assert at.selectbox(key=map_ui.PICK_KEY).value is None  # not a code on the map
    heading = texts(at.subheader)
    assert f"`{HOSTILE}`" in heading, "shown as inert code"
    assert "No events for postal code `" in texts(at.info)
    assert not at.metric
    assert len(deck_points(at)) == before  # the lake is untouched
    assert map_ui.show_code("080193") == "080193"
    assert map_ui.show_code("a`b*c") == "`a'b*c`"


def test_empty_lake_shows_the_waiting_panel(monkeypatch, tmp_path):
    at = open_map(monkeypatch, tmp_path, preset=None)
    assert not at.error
    assert "Waiting for data" in texts(at.subheader)
    assert "telcopulse produce --rate 200" in texts(at.code)
    assert not at.get("deck_gl_json_chart")


def test_an_engine_failure_shows_a_banner_and_keeps_the_map_marked_stale(monkeypatch, csv_lake):
    at = open_map(monkeypatch, csv_lake.parent)
    good = deck_points(at)

    def engine_down(self, sql, params=(), **_):
        raise QueryError("IO Error: lake unreachable")

    monkeypatch.setattr(DuckDBEngine, "run", engine_down)
    st.cache_data.clear()  # as if the refresh interval had passed
    at.run()

    assert not at.exception
    assert [e.value for e in at.error] == [
        "Could not load the committed batch: IO Error: lake unreachable"
    ]
    assert "stale" in texts(at.caption)
    pd.testing.assert_frame_equal(deck_points(at), good)


def test_a_failure_before_any_good_load_is_a_banner_only(monkeypatch, csv_lake):
    def broken(self, sql, params=(), **scope):
        if "AS out_of_service_events" in sql:  # the postal-code map query
            raise RuntimeError("driver bug")
        return original(self, sql, params, **scope)

    original = DuckDBEngine.run
    monkeypatch.setattr(DuckDBEngine, "run", broken)
    at = open_map(monkeypatch, csv_lake.parent)
    assert [e.value for e in at.error] == [
        "Could not load postal-code map: RuntimeError: driver bug"
    ]
    assert not at.get("deck_gl_json_chart")


def test_without_a_basemap_the_map_is_the_points_alone(monkeypatch, csv_lake):
    # Air-gapped sites: TELCOPULSE_BASEMAP=none draws no tiles and the map still works.
    monkeypatch.setenv("TELCOPULSE_BASEMAP", "none")
    at = open_map(monkeypatch, csv_lake.parent)
    assert not at.exception
    spec = json.loads(deck(at).json)
    assert "mapStyle" not in spec
    assert "mapProvider" not in spec
    assert len(deck_points(at)) > 100


# --- coverage cells -------------------------------------------------------------------------


def deck_layer(at: AppTest, layer_id: str) -> dict | None:
    layers = {layer["id"]: layer for layer in json.loads(deck(at).json)["layers"]}
    return layers.get(layer_id)


def test_hexagons_lie_under_the_points_and_follow_the_size_control(monkeypatch, csv_lake):
    at = open_map(monkeypatch, csv_lake.parent)
    layers = [layer["id"] for layer in json.loads(deck(at).json)["layers"]]
    assert layers.index(map_ui.CELL_LAYER_ID) < layers.index(map_ui.LAYER_ID), "cells below"
    cells = deck_layer(at, map_ui.CELL_LAYER_ID)
    assert cells["@@type"] == "H3HexagonLayer"
    drawn = pd.DataFrame(cells["data"])
    assert {h3.get_resolution(c) for c in drawn["cell"]} == {map_ui.DEFAULT_RESOLUTION}
    assert drawn["place"].str.startswith("Cell about 6 km across").all()
    assert drawn["events"].sum() == 994, "every event of the capture carried a position"

    at.segmented_control(key=map_ui.RESOLUTION_KEY).set_value(8).run()
    assert not at.exception
    fine = pd.DataFrame(deck_layer(at, map_ui.CELL_LAYER_ID)["data"])
    assert {h3.get_resolution(c) for c in fine["cell"]} == {8}
    assert len(fine) > len(drawn)

    at.segmented_control(key=map_ui.RESOLUTION_KEY).set_value(0).run()
    assert deck_layer(at, map_ui.CELL_LAYER_ID) is None
    assert len(deck_points(at)) > 100, "the points stay"


def test_a_click_on_a_cell_selects_that_cell():
    cell = "863944607ffffff"
    on_cell = {
        "indices": {map_ui.CELL_LAYER_ID: [4]},
        "objects": {map_ui.CELL_LAYER_ID: [{"cell": cell}]},
    }
    assert map_ui.cell_from_selection(on_cell) == cell
    assert map_ui.cell_from_selection({"indices": {}, "objects": {}}) is None
    assert map_ui.cell_from_selection(None) is None


def test_a_chosen_cell_shows_its_breakdown(monkeypatch, csv_lake):
    at = open_map(monkeypatch, csv_lake.parent)
    drawn = pd.DataFrame(deck_layer(at, map_ui.CELL_LAYER_ID)["data"])
    busiest = drawn.sort_values("events", ascending=False).iloc[0]
    at.session_state[map_ui.CELL_KEY] = busiest["cell"]
    at.run()
    assert not at.exception
    assert f"Coverage cell {busiest['cell']}" in [h.value for h in at.subheader]
    events = next(m for m in at.metric if m.label == "Events")
    assert events.value == f"{busiest['events']:,}"
    outline = deck_layer(at, f"{map_ui.CELL_LAYER_ID}-chosen")
    assert [row["cell"] for row in outline["data"]] == [busiest["cell"]]

    clear = next(b for b in at.button if b.label == "Clear selection")
    clear.click().run()
    assert at.session_state[map_ui.CELL_KEY] is None
    assert any(h.value.startswith("Busiest postal code") for h in at.subheader)


def test_a_refresh_runs_each_query_once_the_independent_ones_at_once(monkeypatch, csv_lake):
    """Page.warm runs the postal codes with the cells, then the busiest code's breakdown
    with its trend, each pair at once; the page then reads them from the cache."""
    calls = refresh_recording_queries(monkeypatch, open_map(monkeypatch, csv_lake.parent))
    assert_each_query_once_warm(
        calls, ("map_cells", "map_postal_codes", "map_postal_breakdown", "map_postal_trend")
    )


def test_a_postal_codes_periods_cover_its_breakdowns_span_and_guess_its_bucket(csv_lake):
    from backend.frames import as_utc
    from backend.map_data import likely_bucket, query_postal_detail, query_postal_map
    from backend.queries import committed_batch
    from backend.windows import pick_bucket, window_for_preset

    engine = DuckDBEngine(csv_lake)
    batch = committed_batch(engine)
    window = window_for_preset("all")
    points = query_postal_map(engine, batch, window).points
    for _, row in points.head(5).iterrows():
        detail = query_postal_detail(engine, batch, window, row["postal_code"])
        assert as_utc(row["periods_from"]) <= detail.first_minute
        assert detail.last_minute <= as_utc(row["periods_until"])
        assert likely_bucket(points, row["postal_code"]) == pick_bucket(
            detail.first_minute, detail.last_minute
        )
    assert likely_bucket(points, "no such code") is None
