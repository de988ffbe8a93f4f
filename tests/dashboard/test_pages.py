"""The Streamlit pages, run headlessly with AppTest against lakes the real job built.

Only the environment (which lake) and, for failures, the lake's files or the
engine's ``run`` are touched; everything between the page and DuckDB is real.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pandas as pd
import pytest
import streamlit as st
from helpers import (
    MOBILE_LOGS,
    PROJECT_ROOT,
    build_lake,
    event,
    newest_commit_dir,
    replay_day,
)
from page_helpers import (
    assert_each_query_once_warm,
    frame_with,
    metric,
    open_page,
    refresh_recording_queries,
    texts,
)
from streamlit.testing.v1 import AppTest

from backend.engine import DuckDBEngine, QueryError
from backend.home import query_headline
from backend.queries import Window, committed_batch, load_sql, run_kpi
from dashboard import panels
from glue_job.contract import ALIASES_FILE

PAGES = ["Home.py", *sorted(f"pages/{p.name}" for p in (PROJECT_ROOT / "pages").glob("*.py"))]
KPIS = "pages/1_KPIs.py"
HEALTH = "pages/3_Pipeline_Health.py"
EVENT_TIME_PAGES = [p for p in PAGES if p != HEALTH]


@pytest.fixture(scope="module")
def csv_rows() -> pd.DataFrame:
    """The CSV's valid rows with what the dashboard shows for them, computed with pandas:
    operator through the alias table (read as data), postal code zero-padded, dBm, time."""
    rows = pd.read_csv(MOBILE_LOGS, dtype={"operator": str})
    rows = rows[rows["operator"].notna() & rows["signal"].between(0, 31)].copy()
    aliases = pd.read_csv(ALIASES_FILE)
    names = dict(zip(aliases["alias"].str.casefold(), aliases["operator"], strict=True))
    rows["operator"] = rows["operator"].str.strip().str.casefold().map(names)
    rows["postal"] = rows["postal_code"].map(
        lambda code: "(none)" if pd.isna(code) else str(int(code)).zfill(6)
    )
    rows["signal_dbm"] = 2 * rows["signal"] - 113
    rows["event_time"] = pd.to_datetime(
        replay_day().isoformat() + " " + rows["hour"], utc=True, format="%Y-%m-%d %H:%M:%S"
    )
    # The alias table names every operator; "Solo llamadas de emergencia" (9 rows) is the
    # handset's banner, no operator (README: Operators).
    assert rows["operator"].isna().sum() == 9
    return rows


def signal_by_operator(rows: pd.DataFrame) -> pd.DataFrame:
    """What the signal table should hold for ``rows``."""
    return (
        rows.groupby("operator")["signal_dbm"]
        .agg(avg_signal_dbm="mean", signal_samples="size")
        .reset_index()
    )


def assert_signal_table(at: AppTest, rows: pd.DataFrame) -> None:
    shown = frame_with(at, "avg_signal_dbm").reset_index(drop=True)
    pd.testing.assert_frame_equal(shown, signal_by_operator(rows), check_dtype=False)


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
    assert shown_movistar["signal_samples"] == len(movistar)

    precision = frame_with(at, "avg_precision_m").set_index("operator")
    assert precision.loc["Movistar", "avg_precision_m"] == pytest.approx(
        movistar["precission"].mean()
    )

    status = frame_with(at, "in_service_share").set_index("postal_code")
    assert status["events"].sum() == len(rows[rows["operator"].notna() & (rows["signal"] <= 31)])
    assert status.loc["(none)", "events"] == 223

    labels = [b.label for b in at.download_button]
    assert labels == ["Download CSV"] * 3 + ["Download trend CSV", "Download CSV"]


def test_a_home_refresh_runs_freshness_headline_and_alerts_at_once(monkeypatch, csv_lake):
    """Page.warm runs the freshness line, the headline and both alert queries at once; the
    page then draws each from the cache, and only the trend (its bucket comes from the
    headline) runs after them."""
    at = open_page(monkeypatch, csv_lake.parent, preset="all")
    calls = refresh_recording_queries(monkeypatch, at)
    assert_each_query_once_warm(
        calls, ("freshness", "headline", "alert_outages", "alert_signal_drops")
    )
    assert any(sql.startswith(load_sql("operator_trend").splitlines()[0]) for sql, _ in calls)


def test_a_kpis_refresh_runs_each_query_once_the_filtered_ones_at_once(monkeypatch, csv_lake):
    """Page.warm runs the headline with the filter choices, then every filtered query at
    once; the page then draws each from the cache."""
    at = open_page(monkeypatch, csv_lake.parent, KPIS, preset="all")
    calls = refresh_recording_queries(monkeypatch, at)
    assert_each_query_once_warm(
        calls,
        (
            "headline",
            "kpi_choices",
            "kpi_status",
            "kpi_signal",
            "kpi_signal_bands",
            "kpi_precision",
            "operator_trend",
        ),
    )


def test_a_download_is_the_table_as_csv_made_when_clicked():
    """Deferred (panels.csv_download): nothing is stored on a run, the CSV on a click."""
    frame = pd.DataFrame({"operator": ["Movistar", "Orange, SA"], "avg_signal_dbm": [-90.5, -101]})
    make = panels.csv_download(frame)
    assert callable(make)
    assert make() == b'operator,avg_signal_dbm\nMovistar,-90.5\n"Orange, SA",-101.0\n'


def test_home_headline_cards_match_the_sql(monkeypatch, csv_lake):
    at = open_page(monkeypatch, csv_lake.parent, preset="all")
    engine = DuckDBEngine(csv_lake)
    headline = query_headline(engine, committed_batch(engine), Window())
    assert metric(at, "Events") == f"{headline.events:,}" == "994"
    assert metric(at, "Avg signal") == f"{headline.avg_signal_dbm:.1f} dBm" == "-90.8 dBm"
    assert metric(at, "Avg GPS precision") == f"{headline.avg_precision_m:.1f} m"
    assert metric(at, "In service") == "99.1 %"  # 9 emergency-only banner events (README)
    assert metric(at, "Active operators") == "13"  # the banner is no operator
    assert metric(at, "Active postal codes") == "131"
    assert all(m.delta == "" for m in at.metric), "no previous window to compare 'all' with"
    captions = texts(at.caption)
    assert "Local deployment" in captions
    assert str(csv_lake) in captions
    assert "Snapshot of batch #1" in texts(at.sidebar.caption)


@pytest.mark.parametrize("page", EVENT_TIME_PAGES)
def test_a_window_without_events_says_how_to_see_some(monkeypatch, csv_lake, page):
    # The lake holds yesterday's events only, so the last 15 minutes are empty. (Pipeline
    # Health selects batches by ingest time, which is now: test_health covers its own case.)
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
    # Each page reads its own tables: the health page reads _ops and quarantine, not gold;
    # the map reads postal codes and coverage cells, not operators.
    read = {HEALTH: "_ops", "pages/2_Map.py": "gold/postal_status_minute"}
    table = lake / read.get(page, "gold/operator_minute")
    # In a partition the page reads: the engine lists only the partitions of its range.
    (newest_commit_dir(table) / "part-99999-corrupt.parquet").write_bytes(b"not parquet at all")

    at = open_page(monkeypatch, tmp_path, page, preset="all")
    assert not at.exception
    banners = texts(at.error)
    assert banners.startswith("Could not load")
    assert "part-99999-corrupt.parquet" in banners
    assert len(at.error) == 1, "one cause, one banner"


def test_failure_after_a_good_load_keeps_the_data_marked_stale(monkeypatch, csv_lake):
    at = open_page(monkeypatch, csv_lake.parent, KPIS, preset="all")
    good = frame_with(at, "avg_signal_dbm")

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
    shutil.rmtree(next((lake / "_ops").glob("batch_date=*/commit=1")))
    st.cache_data.clear()
    at.run()
    assert metric(at, "Events") == "994"
    assert "Snapshot of batch #1" in texts(at.sidebar.caption)

    at.sidebar.toggle(key="tp_paused").set_value(False).run()
    engine = DuckDBEngine(lake)
    assert committed_batch(engine) == 0
    first_half = query_headline(engine, 0, Window()).events
    assert metric(at, "Events") == f"{first_half:,}"
    assert "Snapshot of batch #0" in texts(at.sidebar.caption)


def test_an_unexpected_error_is_a_banner_too(monkeypatch, csv_lake):
    def broken(self, sql, params=(), **scope):
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


# --- KPI filters, custom range ---------------------------------------------------------------


def test_operator_filter_shows_that_operators_numbers(monkeypatch, csv_lake, csv_rows):
    at = open_page(monkeypatch, csv_lake.parent, KPIS, preset="all")
    assert_signal_table(at, csv_rows)

    at.multiselect(key="kpi_operators").set_value(["Movistar", "Yoigo"]).run()
    assert not at.exception
    picked = csv_rows[csv_rows["operator"].isin(["Movistar", "Yoigo"])]
    assert_signal_table(at, picked)
    precision = frame_with(at, "avg_precision_m").set_index("operator")
    assert precision.index.tolist() == ["Movistar", "Yoigo"]
    assert precision["avg_precision_m"].tolist() == pytest.approx(
        picked.groupby("operator")["precission"].mean().tolist()
    )
    bands = frame_with(at, "excellent").set_index("operator")
    assert bands["signal_samples"].tolist() == picked.groupby("operator").size().tolist()
    assert (
        bands.loc["Movistar", "excellent"]
        == ((picked["operator"] == "Movistar") & (picked["signal_dbm"] >= -80)).sum()
    )
    status = frame_with(at, "in_service_share").set_index("postal_code")
    assert status["events"].sum() == len(picked)
    assert status["events"].to_dict() == picked["postal"].value_counts().to_dict()
    assert "only Movistar, Yoigo" in texts(at.caption)


def test_postal_code_filter_applies_to_every_view_that_can_follow_it(
    monkeypatch, csv_lake, csv_rows
):
    code = csv_rows.loc[csv_rows["postal"] != "(none)", "postal"].value_counts().index[0]
    at = open_page(monkeypatch, csv_lake.parent, KPIS, preset="all")
    at.multiselect(key="kpi_postal_codes").set_value([code]).run()
    assert not at.exception
    assert not at.error

    picked = csv_rows[csv_rows["postal"] == code]
    assert_signal_table(at, picked)
    status = frame_with(at, "in_service_share")
    assert status["postal_code"].tolist() == [code]
    assert status["events"].tolist() == [len(picked)]
    # GPS precision and signal bands live in gold per operator only: said, not faked.
    assert texts(at.info).count("cannot follow the postal-code filter") == 3
    assert not [df for df in at.dataframe if "avg_precision_m" in df.value.columns]


def test_custom_range_sets_every_number(monkeypatch, csv_lake, csv_rows):
    at = open_page(monkeypatch, csv_lake.parent, preset="custom")
    day = replay_day()
    at.sidebar.date_input(key="tp_from_date").set_value(day)
    at.sidebar.time_input(key="tp_from_time").set_value(time(10, 0))
    at.sidebar.date_input(key="tp_to_date").set_value(day)
    at.sidebar.time_input(key="tp_to_time").set_value(time(12, 0)).run()
    assert not at.exception

    start = pd.Timestamp(datetime.combine(day, time(10, 0), tzinfo=UTC))
    inside = csv_rows[csv_rows["event_time"].between(start, start + pd.Timedelta(hours=2), "left")]
    before = csv_rows[csv_rows["event_time"].between(start - pd.Timedelta(hours=2), start, "left")]
    assert 0 < len(inside) < len(csv_rows)
    assert metric(at, "Events") == f"{len(inside):,}"
    events = next(m for m in at.metric if m.label == "Events")
    assert events.delta == f"{len(inside) - len(before):+,}"
    assert metric(at, "Avg signal") == f"{inside['signal_dbm'].mean():.1f} dBm"
    assert f"custom range {day.isoformat()} 10:00 UTC" in texts(at.subheader)

    at.switch_page(KPIS).run()
    assert_signal_table(at, inside)


def test_filters_and_custom_range_survive_refresh_and_page_switch(monkeypatch, csv_lake):
    at = open_page(monkeypatch, csv_lake.parent, KPIS, preset="custom")
    at.sidebar.date_input(key="tp_from_date").set_value(replay_day())
    at.sidebar.time_input(key="tp_from_time").set_value(time(6, 30)).run()
    at.multiselect(key="kpi_operators").set_value(["Orange", "VIVO"]).run()
    at.multiselect(key="kpi_postal_codes").set_value(["(none)", "250560"]).run()
    shown = frame_with(at, "avg_signal_dbm")
    assert shown["operator"].tolist() == ["Orange", "VIVO"]

    at.run()  # what an auto-refresh does
    st.cache_data.clear()  # and what the end of a refresh interval does
    at.run()
    at.switch_page("Home.py").run()
    assert at.sidebar.segmented_control(key="tp_range").value == "custom"
    at.switch_page(KPIS).run()

    assert at.multiselect(key="kpi_operators").value == ["Orange", "VIVO"]
    assert at.multiselect(key="kpi_postal_codes").value == ["(none)", "250560"]
    assert at.sidebar.date_input(key="tp_from_date").value == replay_day()
    assert at.sidebar.time_input(key="tp_from_time").value == time(6, 30)
    pd.testing.assert_frame_equal(frame_with(at, "avg_signal_dbm"), shown)


INJECTIONS = [
    "' OR '1'='1",
    "x'); DROP TABLE gold_postal_status_minute; --",
    "Movistar\n' UNION SELECT 1, 2, 3 --",
]


@pytest.mark.parametrize("text", INJECTIONS)
def test_sql_in_a_filter_is_only_text(monkeypatch, csv_lake, text):
    at = open_page(monkeypatch, csv_lake.parent, KPIS, preset="all")
    for key in ("kpi_postal_codes", "kpi_operators"):
        at.multiselect(key=key).set_value([text]).run()
        assert not at.exception
        assert not at.error
        assert "No events match these filters" in texts(at.info)
        assert not at.dataframe
        at.multiselect(key=key).set_value([]).run()
    # Every table is still there, whole.
    assert frame_with(at, "in_service_share")["events"].sum() == 994
    # Per operator: all but the 9 events of the emergency-only banner (no operator).
    assert frame_with(at, "avg_signal_dbm")["signal_samples"].sum() == 994 - 9


# --- Home: change against the previous window, alerts ----------------------------------------

# (minutes before the lake was built, events, fields); see the assertions for what each means.
ALERT_GROUPS = [
    (5, 18, {"postal_code": "280001", "operator": "Orange", "signal_dbm": -88.0}),
    (5, 12, {"postal_code": "280001", "operator": "Orange", "status": 1, "signal_dbm": -88.0}),
    (5, 28, {"postal_code": "280002", "operator": "Orange", "signal_dbm": -88.0}),
    (5, 2, {"postal_code": "280002", "operator": "Orange", "status": 2, "signal_dbm": -88.0}),
    (30, 25, {"operator": "Movistar", "signal_dbm": -91.0, "precision_m": 8.0}),
    (90, 25, {"operator": "Movistar", "signal_dbm": -80.0, "precision_m": 20.0}),
    (90, 25, {"operator": "Orange", "signal_dbm": -86.0, "postal_code": "280009", "status": 3}),
]


@pytest.fixture(scope="module")
def alert_home(spark, tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    anchor = datetime.now(UTC)
    payloads = []
    for minutes, count, fields in ALERT_GROUPS:
        moment = (anchor - timedelta(minutes=minutes)).isoformat()
        for _ in range(count):
            values = {"status": 0, **fields}
            payloads.append(event(event_id=f"home-{len(payloads)}", event_time=moment, **values))
    home = tmp_path_factory.mktemp("alert-home")
    build_lake(spark, home / "lake", [payloads])
    rows = pd.DataFrame([json.loads(p) for p in payloads])
    rows["minutes_ago"] = [m for m, n, _ in ALERT_GROUPS for _ in range(n)]
    return home, rows


def test_home_compares_with_the_previous_hour_and_lists_alerts(monkeypatch, alert_home):
    home, rows = alert_home
    at = open_page(monkeypatch, home, preset="1 h")
    assert not at.exception
    assert not at.error

    # Independently: the last hour holds the events from 5 and 30 min ago, the hour before
    # those from 90 min ago.
    now, before = rows[rows["minutes_ago"] < 60], rows[rows["minutes_ago"] >= 60]
    cards = {m.label: m for m in at.metric}
    assert cards["Events"].value == f"{len(now):,}"
    assert cards["Events"].delta == f"{len(now) - len(before):+,}"
    signal = now["signal_dbm"].mean()
    assert cards["Avg signal"].value == f"{signal:.1f} dBm"
    assert cards["Avg signal"].delta == f"{signal - before['signal_dbm'].mean():+.1f} dB"
    precision = now["precision_m"].mean()
    assert cards["Avg GPS precision"].value == f"{precision:.1f} m"
    assert cards["Avg GPS precision"].delta == (
        f"{precision - before['precision_m'].mean():+.1f} m"
    )
    share = 100 * (now["status"] == 0).mean()
    assert cards["In service"].value == f"{share:.1f} %"
    assert cards["In service"].delta == f"{share - 100 * (before['status'] == 0).mean():+.1f} pp"
    assert cards["Active operators"].delta == "±0"
    codes = now["postal_code"].nunique() - before["postal_code"].nunique()
    assert cards["Active postal codes"].delta == f"{codes:+,}"

    warnings = texts(at.warning)
    # 280001: 12 of 30 out of service (40 % > 20 %); 280002: 2 of 30 emergency-only (7 %).
    assert "**280001**: 40% (12 of 30 events)" in warnings
    assert "280002" not in warnings
    # Movistar: -80 dBm the hour before, -91 this hour; Orange fell by 2 dB only.
    assert "**Movistar**: −91.0 dBm, down 11.0 dB from −80.0 dBm" in warnings
    assert "Orange" not in warnings
    assert not at.success


def test_home_without_alerts_says_so(monkeypatch, csv_lake):
    at = open_page(monkeypatch, csv_lake.parent, preset="all")
    assert not at.warning
    assert texts(at.success).startswith("No alerts")
