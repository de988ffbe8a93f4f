"""The Streamlit pages, run headlessly with AppTest against lakes the real job built.

Only the environment (which lake) and, for failures, the lake's files or the
engine's ``run`` are touched; everything between the page and DuckDB is real.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import streamlit as st
from conftest import MOBILE_LOGS, PROJECT_ROOT
from streamlit.testing.v1 import AppTest

from backend import dashboard_data as data
from backend.engine import DuckDBEngine, QueryError
from backend.queries import Window, run_kpi

HOME = PROJECT_ROOT / "Home.py"
PAGES = ["Home.py", *sorted(f"pages/{p.name}" for p in (PROJECT_ROOT / "pages").glob("*.py"))]
KPIS = "pages/1_KPIs.py"
TIMEOUT = 60


@pytest.fixture(autouse=True)
def isolated(monkeypatch):
    """No cache or TELCOPULSE_* variable leaks into (or out of) a test."""
    import os

    for name in [n for n in os.environ if n.startswith("TELCOPULSE_")]:
        monkeypatch.delenv(name)
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


def open_page(monkeypatch, home: Path, page: str = "Home.py", preset: str | None = None):
    """Run ``page`` of the app over ``<home>/lake``, optionally with a time-range preset."""
    monkeypatch.setenv("TELCOPULSE_HOME", str(home))
    at = AppTest.from_file(str(HOME), default_timeout=TIMEOUT).run()
    if page != "Home.py":
        at.switch_page(page).run()
    if preset is not None:
        at.sidebar.segmented_control(key="tp_range").set_value(preset).run()
    return at


def frame_with(at: AppTest, column: str) -> pd.DataFrame:
    frames = [df.value for df in at.dataframe if column in df.value.columns]
    assert len(frames) == 1, f"expected one table with {column!r}"
    return frames[0]


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_without_exception(monkeypatch, csv_lake, page):
    at = open_page(monkeypatch, csv_lake.parent, page)
    assert not at.exception
    at.sidebar.segmented_control(key="tp_range").set_value("all").run()
    assert not at.exception
    assert not at.error, texts(at.error)
    assert at.get("plotly_chart"), "the page drew no chart over the whole lake"


def test_kpi_tables_show_what_the_sql_returns_and_the_csv_says(monkeypatch, csv_lake):
    at = open_page(monkeypatch, csv_lake.parent, KPIS, preset="all")
    engine = DuckDBEngine(csv_lake)

    shown = frame_with(at, "avg_signal_dbm")
    expected = run_kpi(engine, "kpi_signal", Window())
    pd.testing.assert_frame_equal(shown.reset_index(drop=True), expected, check_dtype=False)

    # Independent of the job and the SQL: Movistar and movistar rows, ASU 0-31 -> dBm.
    rows = pd.read_csv(MOBILE_LOGS)
    movistar = rows[rows["operator"].str.casefold().eq("movistar") & rows["signal"].between(0, 31)]
    shown_movistar = shown.set_index("operator").loc["Movistar"]
    assert shown_movistar["avg_signal_dbm"] == pytest.approx((2 * movistar["signal"] - 113).mean())
    assert shown_movistar["samples"] == len(movistar)

    precision = frame_with(at, "avg_precision_m").set_index("operator")
    assert precision.loc["Movistar", "avg_precision_m"] == pytest.approx(
        movistar["precission"].mean()
    )

    status = frame_with(at, "in_service_share").set_index("postal_code")
    assert status["events"].sum() == len(rows[rows["operator"].notna() & (rows["signal"] <= 31)])
    assert status.loc["(none)", "events"] == 223

    labels = [b.label for b in at.download_button]
    assert labels == ["Download CSV"] * 3


def test_home_headline_cards_match_the_sql(monkeypatch, csv_lake):
    at = open_page(monkeypatch, csv_lake.parent, preset="all")
    engine = DuckDBEngine(csv_lake)
    headline = data.query_headline(engine, Window(), data.committed_batch(engine))
    assert metric(at, "Events") == f"{headline.events:,}" == "994"
    assert metric(at, "Avg signal") == f"{headline.avg_signal_dbm:.1f} dBm" == "-90.8 dBm"
    assert metric(at, "Avg GPS precision") == f"{headline.avg_precision_m:.1f} m"
    assert metric(at, "In service") == "100.0 %"
    assert metric(at, "Operators") == "14"
    assert metric(at, "Postal codes") == "131"
    captions = texts(at.caption)
    assert "Local deployment" in captions
    assert str(csv_lake) in captions
    assert "Snapshot of batch #1" in texts(at.sidebar.caption)


@pytest.mark.parametrize("page", PAGES)
def test_a_window_without_events_says_how_to_see_some(monkeypatch, csv_lake, page):
    # The lake holds yesterday's events only, so the last 15 minutes are empty.
    at = open_page(monkeypatch, csv_lake.parent, page, preset="15 min")
    assert not at.exception
    assert "No events in the last 15 min. The newest committed event is from" in texts(at.info)
    assert not at.metric
    assert not at.dataframe


@pytest.mark.parametrize("page", PAGES)
def test_empty_lake_shows_the_waiting_panel(monkeypatch, tmp_path, page):
    at = open_page(monkeypatch, tmp_path, page)
    assert not at.exception
    assert not at.error
    assert "Waiting for data" in texts(at.subheader)
    assert "telcopulse produce --rate 200" in texts(at.code)
    assert "make up" in texts(at.markdown)
    assert "Nothing committed yet" in texts(at.sidebar.caption)


@pytest.mark.parametrize("page", PAGES)
def test_corrupt_lake_file_shows_a_banner_not_a_traceback(monkeypatch, csv_lake, tmp_path, page):
    lake = tmp_path / "lake"
    shutil.copytree(csv_lake, lake)
    partition = next((lake / "gold" / "operator_minute").glob("event_date=*/batch_id=0"))
    (partition / "part-99999-corrupt.parquet").write_bytes(b"not parquet at all")

    at = open_page(monkeypatch, tmp_path, page, preset="all")
    assert not at.exception
    banners = texts(at.error)
    assert banners.startswith("Could not load")
    assert "part-99999-corrupt.parquet" in banners
    assert len(at.error) == 1, "one cause, one banner"


def test_failure_after_a_good_load_keeps_the_data_marked_stale(monkeypatch, csv_lake):
    at = open_page(monkeypatch, csv_lake.parent, KPIS, preset="all")
    good = frame_with(at, "avg_signal_dbm")

    def engine_down(self, sql, params=()):
        raise QueryError("IO Error: lake unreachable")

    monkeypatch.setattr(DuckDBEngine, "run", engine_down)
    st.cache_data.clear()  # as if the refresh interval had passed
    at.run()

    assert not at.exception
    assert [e.value for e in at.error] == [
        "Could not load the committed batch: IO Error: lake unreachable"
    ]
    assert "stale" in texts(at.caption)
    pd.testing.assert_frame_equal(frame_with(at, "avg_signal_dbm"), good)


def test_refresh_and_page_switch_keep_the_users_choices(monkeypatch, csv_lake):
    at = open_page(monkeypatch, csv_lake.parent, preset="7 d")
    at.sidebar.select_slider(key="tp_interval").set_value(30).run()
    at.sidebar.toggle(key="tp_paused").set_value(True).run()

    at.run()  # what an auto-refresh does
    at.switch_page(KPIS).run()
    at.switch_page("Home.py").run()

    assert at.sidebar.segmented_control(key="tp_range").value == "7 d"
    assert at.sidebar.select_slider(key="tp_interval").value == 30
    assert at.sidebar.toggle(key="tp_paused").value is True
    assert "paused" in texts(at.sidebar.caption)


def test_pause_freezes_the_snapshot(monkeypatch, csv_lake, tmp_path):
    lake = tmp_path / "lake"
    shutil.copytree(csv_lake, lake)
    at = open_page(monkeypatch, tmp_path, preset="all")
    at.sidebar.toggle(key="tp_paused").set_value(True).run()
    assert metric(at, "Events") == "994"

    # Un-commit batch 1: readers must fall back to batch 0 - but not while paused.
    shutil.rmtree(lake / "_ops" / "batch_id=1")
    st.cache_data.clear()
    at.run()
    assert metric(at, "Events") == "994"
    assert "Snapshot of batch #1" in texts(at.sidebar.caption)

    at.sidebar.toggle(key="tp_paused").set_value(False).run()
    engine = DuckDBEngine(lake)
    assert data.committed_batch(engine) == 0
    first_half = data.query_headline(engine, Window(), 0).events
    assert metric(at, "Events") == f"{first_half:,}"
    assert "Snapshot of batch #0" in texts(at.sidebar.caption)


def test_an_unexpected_error_is_a_banner_too(monkeypatch, csv_lake):
    def broken(self, sql, params=()):
        raise RuntimeError("driver bug")

    monkeypatch.setattr(DuckDBEngine, "run", broken)
    at = open_page(monkeypatch, csv_lake.parent, KPIS)
    assert not at.exception
    assert [e.value for e in at.error] == [
        "Could not load the committed batch: RuntimeError: driver bug"
    ]


def test_invalid_settings_name_the_variable(monkeypatch, csv_lake):
    monkeypatch.setenv("TELCOPULSE_REFRESH_SECONDS", "1")
    at = open_page(monkeypatch, csv_lake.parent)
    assert not at.exception
    assert "TELCOPULSE_REFRESH_SECONDS" in texts(at.error)
