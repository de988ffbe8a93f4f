"""The Pipeline Health page, run headlessly with AppTest against lakes the real job built.

The numbers on the page are checked against what went into the lake (3 valid events,
1 duplicate and 2 malformed records in the first batch, and so on), never against the
page's own SQL. Failures are injected at the engine or at the backend function boundary.
"""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import streamlit as st
from helpers import build_lake, event, raw_rows
from page_helpers import frame_with, metric, open_page, texts
from streamlit.testing.v1 import AppTest

from backend import health_data
from backend.engine import DuckDBEngine, QueryError
from dashboard import controls
from dashboard import health as health_page
from dashboard.charts import PALETTE
from dashboard.health_charts import reason_colors

HEALTH = "pages/3_Pipeline_Health.py"
NOT_UTF8 = b"\x80\x81 binary"
BATCHES: list[list[bytes | str]] = [
    # 3 valid, 1 duplicate, 2 malformed (one of them not even UTF-8)
    [
        *(event(event_id=f"v-{i}") for i in (1, 2, 3)),
        event(event_id="v-1"),
        "{not json",
        NOT_UTF8,
    ],
    # 1 valid, 1 duplicate of batch 0, 1 record failing two rules
    [event(event_id="v-4"), event(event_id="v-2"), event(event_id="v-5", status=7, operator=...)],
]
RECORDS, SILVER, QUARANTINED, DUPLICATES = 9, 4, 3, 2
REASONS = {"malformed_json": 1, "invalid_utf8": 1, "out_of_range_status": 1, "missing_operator": 1}


@pytest.fixture(scope="module")
def health_lake(spark, tmp_path_factory) -> Path:
    return build_lake(spark, tmp_path_factory.mktemp("health-page") / "lake", BATCHES)


@pytest.fixture(scope="module")
def old_lake(spark, tmp_path_factory) -> Path:
    """One batch committed three hours ago (the job's clock set back), nothing since."""
    from glue_job.batch import BatchProcessor, ParquetLake
    from glue_job.schemas import RAW_SCHEMA

    root = tmp_path_factory.mktemp("health-old") / "lake"
    then = datetime.now(UTC) - timedelta(hours=3)
    processor = BatchProcessor(
        spark, ParquetLake(spark, str(root)), clock=lambda: then, log=lambda _m: None
    )
    payloads = [event(event_id="o-1", event_time=(then - timedelta(minutes=1)).isoformat())]
    processor.process_batch(spark.createDataFrame(raw_rows(payloads), RAW_SCHEMA), 0)
    return root


def open_health(monkeypatch, lake: Path, preset: str | None = "all") -> AppTest:
    return open_page(monkeypatch, lake.parent, HEALTH, preset)


def test_numbers_match_what_went_into_the_lake(monkeypatch, health_lake):
    at = open_health(monkeypatch, health_lake)
    assert not at.exception
    assert not at.error, texts(at.error)

    assert metric(at, "Batches") == "2"
    assert metric(at, "Records read") == f"{RECORDS:,}"
    assert metric(at, "Quarantined") == f"{QUARANTINED:,}"
    assert metric(at, "Duplicates dropped") == f"{DUPLICATES:,}"
    assert float(metric(at, "Input rate (rec/s)")) > 0
    assert [s.value for s in at.success] == [
        f"Reconciled: bronze {RECORDS} = silver {SILVER} + quarantine {QUARANTINED} + "
        f"duplicates {DUPLICATES}, in all 2 batches."
    ]

    reasons = frame_with(at, "share").set_index("reason")
    assert reasons["records"].to_dict() == REASONS
    assert reasons.loc["missing_operator", "share"] == pytest.approx(1 / QUARANTINED)

    samples = frame_with(at, "preview")
    assert samples["batch_id"].tolist() == [1, 0, 0]  # newest first
    shown = dict(zip(samples["reasons"], samples["preview"], strict=True))
    assert shown["malformed_json"] == "{not json"
    assert shown["invalid_utf8"] == base64.b64encode(NOT_UTF8).decode("ascii")
    assert shown["missing_operator, out_of_range_status"].startswith('{"event_id": "v-5"')

    for layer in ("Bronze", "Silver", "Gold"):
        assert metric(at, f"{layer} · last write").endswith(" s ago")
    assert len(at.get("plotly_chart")) == 6  # four trends, dropped records, reasons


def test_full_payload_of_a_chosen_sample(monkeypatch, health_lake):
    at = open_health(monkeypatch, health_lake)
    samples = frame_with(at, "preview")
    binary = samples[samples["reasons"] == "invalid_utf8"].iloc[0]
    at.selectbox(key="health_sample").set_value(
        f"{binary['batch_id']}/{binary['shard_id']}/{binary['sequence_number']}"
    ).run()
    assert not at.exception
    assert at.code[-1].value == base64.b64encode(NOT_UTF8).decode("ascii")

    at.selectbox(key="health_reason").set_value("malformed_json").run()
    assert frame_with(at, "preview")["preview"].tolist() == ["{not json"]
    assert at.code[-1].value == "{not json"


def test_the_latency_of_the_pages_own_queries(monkeypatch, health_lake):
    # One refresh interval for the whole test: a tick boundary between two runs would
    # rightly reload everything, which is not what this test is about.
    tick = controls.current_tick(10)
    monkeypatch.setattr(controls, "current_tick", lambda _interval: tick)
    at = open_health(monkeypatch, health_lake)
    latency = frame_with(at, "took_ms").set_index("query")
    assert set(latency.index) == {
        "stream status (Kinesis)",
        "layer freshness",
        "window totals",
        "batch trend",
        "quarantine reasons",
        "quarantine samples",
    }
    assert (latency["took_ms"] > 0).all()
    # The preset changed this run; the stream probe is still the one of the run before.
    assert latency.loc["window totals", "loaded"] == "this run"
    assert latency.loc["stream status (Kinesis)", "loaded"].startswith("cached at ")

    at.run()  # the same refresh tick: everything comes from the cache
    latency = frame_with(at, "took_ms").set_index("query")
    assert latency.loc["window totals", "loaded"].startswith("cached at ")


def test_reconciliation_turns_red_on_a_mismatch(monkeypatch, health_lake):
    real_totals = health_data.query_window_totals
    real_trend = health_data.query_batch_trend

    def one_record_lost(engine, batch, window):
        totals = real_totals(engine, batch, window)
        return replace(totals, silver_rows=totals.silver_rows - 1, mismatched_batches=1)

    def batch_1_lost_one(engine, batch, window, resolution):
        trend = real_trend(engine, batch, window, resolution)
        return trend.assign(mismatched_batches=(trend["first_batch_id"] == 1).astype("int64"))

    monkeypatch.setattr(health_data, "query_window_totals", one_record_lost)
    monkeypatch.setattr(health_data, "query_batch_trend", batch_1_lost_one)
    at = open_health(monkeypatch, health_lake)
    assert not at.exception
    assert not at.success
    assert [e.value for e in at.error] == [
        f"Does not reconcile: bronze {RECORDS} ≠ {RECORDS - 1} (silver {SILVER - 1} + quarantine "
        f"{QUARANTINED} + duplicates {DUPLICATES}), +1 records; 1 of 2 batches do not add up."
    ]
    assert frame_with(at, "mismatched_batches")["first_batch_id"].tolist() == [1]


def test_stream_down_is_a_warning_not_a_traceback(monkeypatch, health_lake):
    at = open_health(monkeypatch, health_lake)
    assert not at.exception
    assert "Endpoint does not answer" in texts(at.markdown)
    assert metric(at, "Open shards") == "—"
    warning = texts(at.warning)
    assert "EndpointConnectionError" in warning
    assert "make up" in warning


def test_stream_up_shows_its_shards(monkeypatch, health_lake):
    class Answering:
        def describe_stream_summary(self, StreamName):
            return {"StreamDescriptionSummary": {"StreamStatus": "ACTIVE", "OpenShardCount": 4}}

    monkeypatch.setattr(health_page, "stream_client", lambda settings, timeout=1.0: Answering())
    at = open_health(monkeypatch, health_lake)
    assert "Endpoint answers" in texts(at.markdown)
    assert metric(at, "Open shards") == "4"
    assert metric(at, "Stream status") == "ACTIVE"
    assert not at.warning


def test_empty_lake_shows_the_stream_and_the_waiting_panel(monkeypatch, tmp_path):
    at = open_health(monkeypatch, tmp_path / "lake", preset=None)
    assert not at.exception
    assert not at.error
    assert "Waiting for data" in texts(at.subheader)
    assert "telcopulse produce --rate 200" in texts(at.code)
    assert "Endpoint does not answer" in texts(at.markdown)
    assert not at.get("plotly_chart")


def test_a_window_without_batches_says_so_and_keeps_freshness(monkeypatch, old_lake):
    at = open_health(monkeypatch, old_lake, preset="1 h")
    assert not at.exception
    assert "No batch started in the last 1 h" in texts(at.info)
    assert metric(at, "Bronze · last write") == "3 h 0 min ago"
    assert "Stale" in texts(at.markdown)
    assert not at.get("plotly_chart")

    at.sidebar.segmented_control(key="tp_range").set_value("24 h").run()
    assert metric(at, "Batches") == "1"
    assert metric(at, "Records read") == "1"
    assert "No record was quarantined in this window." in texts(at.info)


def test_engine_failure_is_a_banner(monkeypatch, health_lake):
    def engine_down(self, sql, params=(), **_):
        raise QueryError("IO Error: lake unreachable")

    monkeypatch.setattr(DuckDBEngine, "run", engine_down)
    at = open_health(monkeypatch, health_lake, preset=None)
    assert not at.exception
    assert [e.value for e in at.error] == [
        "Could not load the committed batch: IO Error: lake unreachable"
    ]


def test_one_failing_query_leaves_the_rest_and_keeps_its_last_good_data(monkeypatch, health_lake):
    at = open_health(monkeypatch, health_lake)
    assert metric(at, "Batches") == "2"

    real_run = DuckDBEngine.run

    def ops_totals_fail(self, sql, params=(), **scope):
        if "quarantine_table_rows" in sql:
            raise QueryError("IO Error: _ops file vanished")
        return real_run(self, sql, params, **scope)

    monkeypatch.setattr(DuckDBEngine, "run", ops_totals_fail)
    st.cache_data.clear()  # as if the refresh interval had passed
    at.run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "Could not load window totals: IO Error: _ops file vanished"
    ]
    assert "stale" in texts(at.caption)
    assert metric(at, "Batches") == "2"  # the last good totals, marked stale
    assert metric(at, "Bronze · last write").endswith("ago")  # other queries still ran


def test_reason_colours_are_stable_and_distinct():
    reasons = [f"missing_field_{i}" for i in range(len(PALETTE))]
    colours = reason_colors(reasons)
    assert sorted(colours.values()) == sorted(PALETTE)
    assert reason_colors(list(reversed(reasons))) == colours
    # The first in name order always keeps its own slot, whatever else is on the chart.
    alone = reason_colors(["invalid_utf8"])["invalid_utf8"]
    assert reason_colors(["invalid_utf8", *reasons])["invalid_utf8"] == alone
