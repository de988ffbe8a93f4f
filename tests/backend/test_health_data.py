"""backend.health_data against a small lake the real per-batch function built.

The batches are written by hand (3 valid events, duplicates, malformed and non-UTF-8
records, an empty batch) under a fixed clock, so every expected count, rate and lag
below follows from the inputs, not from the SQL under test.
"""

from __future__ import annotations

import base64
import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from helpers import drop_running_figures, event, free_port, record_queries

from backend import health_data as health
from backend import kinesis
from backend.engine import DuckDBEngine
from backend.queries import Window
from backend.settings import load_settings
from glue_job.batch import SoFar

START = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
# Batch starts and ends, in the order BatchProcessor asks its clock.
CLOCK = [
    START,
    START + timedelta(seconds=2),
    START + timedelta(seconds=10),
    START + timedelta(seconds=11),
    START + timedelta(seconds=25),
    START + timedelta(seconds=25.5),
]
ARRIVAL_LAG = timedelta(seconds=3)
EVENT_BASE = START - timedelta(minutes=10)
LONG_PAYLOAD = '{"x": "' + "y" * 3000 + '"}'
NOT_UTF8 = b"\xff\xfe\x00 not text"

BATCHES: list[list[bytes | str]] = [
    [
        event(event_id="a-1", event_time=EVENT_BASE.isoformat()),
        event(event_id="a-2", event_time=(EVENT_BASE + timedelta(seconds=1)).isoformat()),
        event(event_id="a-3", event_time=(EVENT_BASE + timedelta(seconds=2)).isoformat()),
        event(event_id="a-1", event_time=(EVENT_BASE + timedelta(seconds=30)).isoformat()),
        "not json",
        NOT_UTF8,
    ],
    [
        event(event_id="a-2", event_time=(EVENT_BASE + timedelta(minutes=3)).isoformat()),
        event(event_id="b-1", event_time=(EVENT_BASE + timedelta(minutes=5)).isoformat()),
        event(event_id="b-2", status=9, signal_dbm=5.0),
        event(event_id="b-3", operator=...),
        LONG_PAYLOAD,
    ],
    [],
]
NEWEST_EVENT = EVENT_BASE + timedelta(minutes=5)  # b-1; the later a-1 and a-2 are duplicates
EXPECTED_REASONS = {
    "malformed_json": 1,
    "invalid_utf8": 1,
    "out_of_range_status": 1,
    "out_of_range_signal_dbm": 1,
    "missing_operator": 2,
    "missing_event_id": 1,
    "missing_event_time": 1,
    "missing_status": 1,
}


def build_clocked_lake(spark, root: Path, batches, clock: list[datetime]) -> Path:
    """The real BatchProcessor over static batches, with its clock and arrivals fixed."""
    from glue_job.batch import BatchProcessor
    from glue_job.lake import ParquetLake
    from glue_job.schemas import RAW_SCHEMA

    ticks = iter(clock)
    processor = BatchProcessor(
        spark, ParquetLake(spark, str(root)), clock=lambda: next(ticks), log=lambda _m: None
    )
    sequence = 49_000_000_000_000_000_000
    for batch_id, payloads in enumerate(batches):
        arrival = clock[2 * batch_id] - ARRIVAL_LAG
        rows = []
        for payload in payloads:
            data = payload.encode() if isinstance(payload, str) else payload
            sequence += 1
            rows.append((data, "telcopulse-events", "shardId-0", str(sequence), "pk", arrival))
        processor.process_batch(spark.createDataFrame(rows, RAW_SCHEMA), batch_id)
    return root


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory) -> Path:
    return build_clocked_lake(spark, tmp_path_factory.mktemp("health") / "lake", BATCHES, CLOCK)


@pytest.fixture(scope="module")
def engine(lake) -> DuckDBEngine:
    return DuckDBEngine(lake)


def read_ops(lake: Path) -> pd.DataFrame:
    """_ops straight from the Parquet files, without the SQL under test."""
    frame = pq.read_table(lake / "_ops").to_pandas()
    frame["batch_id"] = frame["batch_id"].astype("int64")
    return frame.sort_values("batch_id", ignore_index=True)


# --- totals and reconciliation ------------------------------------------------------------


def test_window_totals_add_up_what_went_in(engine):
    totals = health.query_window_totals(engine, 2, Window())
    assert totals.batches == 3
    assert totals.records == totals.bronze_rows == 11
    assert totals.silver_rows == 4  # a-1, a-2, a-3, b-1
    assert totals.quarantine_rows == totals.quarantine_table_rows == 5
    assert totals.duplicates == 2  # a-1 within batch 0, a-2 again in batch 1
    assert totals.mismatched_batches == 0
    assert totals.reconciled
    assert totals.first_batch_start == START
    assert totals.last_batch_start == START + timedelta(seconds=25)
    assert totals.max_source_lag_seconds == pytest.approx(ARRIVAL_LAG.total_seconds())


def test_totals_read_only_the_committed_snapshot_and_window(engine):
    first = health.query_window_totals(engine, 0, Window())
    assert (first.batches, first.records, first.duplicates, first.quarantine_rows) == (1, 6, 1, 2)
    assert first.quarantine_table_rows == 2
    assert health.query_window_totals(engine, -1, Window()).is_empty
    later = Window(since=START + timedelta(seconds=5), until=START + timedelta(minutes=1))
    tail = health.query_window_totals(engine, 2, later)
    assert (tail.batches, tail.records, tail.quarantine_table_rows) == (2, 5, 3)


def test_a_batch_that_does_not_add_up_is_caught(lake, tmp_path):
    copy = tmp_path / "lake"
    shutil.copytree(lake, copy)
    part = next((copy / "_ops").glob("batch_date=*/commit=1/*.parquet"))
    ops = pq.read_table(part).to_pandas()
    ops["silver_rows"] += 1  # as if silver had gained a record from nowhere
    ops.to_parquet(part, index=False)

    engine = DuckDBEngine(copy)
    totals = health.query_window_totals(engine, 2, Window())
    assert not totals.reconciled
    assert totals.mismatched_batches == 1
    assert totals.unaccounted == -1
    trend = health.query_batch_trend(engine, 2, Window(), "batch")
    assert health.mismatched_batches(trend)["first_batch_id"].tolist() == [1]


def test_quarantine_files_missing_from_the_table_break_reconciliation(lake, tmp_path):
    copy = tmp_path / "lake"
    shutil.copytree(lake, copy)
    for part in (copy / "quarantine").glob("ingest_date=*/commit=1"):
        shutil.rmtree(part)
    totals = health.query_window_totals(DuckDBEngine(copy), 2, Window())
    assert totals.quarantine_table_rows == 2
    assert totals.quarantine_rows == 5
    assert totals.unaccounted == 0
    assert not totals.reconciled


# --- batches over time --------------------------------------------------------------------


def test_per_batch_trend_matches_ops_and_the_clock(engine, lake):
    trend = health.query_batch_trend(engine, 2, Window(), "batch")
    ops = read_ops(lake)
    assert list(trend.columns) == list(health.TREND_COLUMNS)
    assert trend["first_batch_id"].tolist() == [0, 1, 2]
    assert trend["records"].tolist() == ops["records_read"].tolist() == [6, 5, 0]
    assert trend["duplicates"].tolist() == [1, 1, 0]
    assert trend["quarantine_rows"].tolist() == [2, 3, 0]
    assert trend["mismatched_batches"].tolist() == [0, 0, 0]
    assert trend["time"].tolist() == [CLOCK[0], CLOCK[2], CLOCK[4]]
    # Records over the seconds since the previous batch started: 5 in 10 s, 0 in 15 s.
    assert pd.isna(trend["input_rate"].iloc[0])
    assert trend["input_rate"].iloc[1:].tolist() == pytest.approx([0.5, 0.0])
    assert health.window_input_rate(trend) == pytest.approx(5 / 25)
    assert trend["duration_seconds"].tolist() == pytest.approx(ops["duration_seconds"].tolist())
    assert trend["source_lag_seconds"].iloc[:2].tolist() == pytest.approx([3.0, 3.0])


def test_bucketed_trend_sums_the_same_batches(engine):
    per_batch = health.query_batch_trend(engine, 2, Window(), "batch")
    buckets = health.query_batch_trend(engine, 2, Window(), "minute")
    assert list(buckets.columns) == list(health.TREND_COLUMNS)
    assert buckets["batches"].sum() == 3
    assert buckets["records"].sum() == 11
    assert buckets["duplicates"].sum() == 2
    assert buckets["quarantine_rows"].sum() == 5
    assert buckets["max_duration_seconds"].max() == pytest.approx(
        per_batch["duration_seconds"].max()
    )
    assert health.window_input_rate(buckets) == pytest.approx(health.window_input_rate(per_batch))
    with pytest.raises(ValueError, match="unknown resolution"):
        health.query_batch_trend(engine, 2, Window(), "week")


def test_resolution_is_per_batch_until_there_are_too_many():
    empty = health.WindowTotals(0, 0, 0, 0, 0, 0, 0, 0, None, None, 0.0, None, None)
    assert health.pick_resolution(replace(empty, batches=health.MAX_BATCH_POINTS)) == "batch"
    many = replace(
        empty,
        batches=health.MAX_BATCH_POINTS + 1,
        first_batch_start=START,
        last_batch_start=START + timedelta(days=7),
    )
    assert health.pick_resolution(many) == "hour"
    assert health.pick_resolution(replace(many, last_batch_start=START)) == "minute"


def test_an_empty_window_gives_empty_frames_of_the_same_shape(engine):
    future = Window(since=START + timedelta(days=1), until=START + timedelta(days=2))
    assert health.query_window_totals(engine, 2, future).is_empty
    trend = health.query_batch_trend(engine, 2, future, "batch")
    assert trend.empty
    assert list(trend.columns) == list(health.TREND_COLUMNS)
    assert health.window_input_rate(trend) is None
    assert health.query_quarantine_reasons(engine, 2, future, "minute").empty
    samples = health.query_quarantine_samples(engine, 2, future)
    assert samples.empty
    assert list(samples.columns) == list(health.SAMPLE_COLUMNS)


# --- freshness ----------------------------------------------------------------------------


def test_layer_freshness_comes_from_the_newest_batch_that_wrote_each_layer(engine, lake):
    now = START + timedelta(seconds=100)
    layers = health.query_layer_freshness(engine, 2, None, (60, 300), now=now)
    assert [layer.layer for layer in layers] == ["bronze", "silver", "gold"]
    ops = read_ops(lake)
    batch_1_end = ops.loc[1, "batch_end"]
    assert batch_1_end == CLOCK[3]
    for layer in layers:
        # Batch 2 read nothing, so batch 1 is the newest write to every layer.
        assert layer.last_write == CLOCK[3]
        assert layer.newest_event == NEWEST_EVENT
        assert layer.newest_arrival == CLOCK[2] - ARRIVAL_LAG
        assert layer.write_age_seconds == pytest.approx(89)
        assert layer.event_age_seconds == pytest.approx((now - NEWEST_EVENT).total_seconds())
        assert layer.level == "amber"
    assert layers[0].rated_at(CLOCK[3] + timedelta(seconds=5), 60, 300).level == "green"


def test_layer_freshness_of_an_early_snapshot_and_of_nothing(engine):
    now = START + timedelta(minutes=1)
    first = health.query_layer_freshness(engine, 0, None, (60, 300), now=now)
    assert {layer.last_write for layer in first} == {CLOCK[1]}
    assert {layer.newest_event for layer in first} == {EVENT_BASE + timedelta(seconds=2)}
    nothing = health.query_layer_freshness(engine, -1, None, (60, 300))
    assert all(not layer.has_data and layer.level == "red" for layer in nothing)


def test_each_layer_is_as_fresh_as_the_newest_batch_that_wrote_it(spark, tmp_path, monkeypatch):
    """A batch whose every record is quarantined writes bronze but not silver or gold: the
    layers part, and the committed batch's own row says so without a scan of _ops, as the
    scan does. A lake whose rows predate the silver figures is answered by the scan."""
    batches = [[event(event_id="c-1", event_time=EVENT_BASE.isoformat())], ["not json"]]
    root = build_clocked_lake(spark, tmp_path / "lake", batches, CLOCK)
    now = START + timedelta(seconds=100)
    ran = record_queries(monkeypatch)
    layers = {
        layer.layer: layer
        for layer in health.query_layer_freshness(DuckDBEngine(root), 1, None, (60, 300), now=now)
    }
    assert len(ran) == 1  # the commit row alone
    assert layers["bronze"].last_write == CLOCK[3]
    assert layers["bronze"].newest_arrival == CLOCK[2] - ARRIVAL_LAG
    for layer in ("silver", "gold"):
        assert layers[layer].last_write == CLOCK[1]
        assert layers[layer].newest_arrival == CLOCK[0] - ARRIVAL_LAG
    assert {layer.newest_event for layer in layers.values()} == {EVENT_BASE}

    drop_running_figures(root, SoFar.SILVER_COLUMNS)
    ran.clear()
    scanned = health.query_layer_freshness(DuckDBEngine(root), 1, None, (60, 300), now=now)
    assert {layer.layer: layer for layer in scanned} == layers
    assert len(ran) == 2  # the row, which cannot answer, then the scan


# --- quarantine ---------------------------------------------------------------------------


def test_reasons_count_every_reason_of_every_record(engine):
    reasons = health.query_quarantine_reasons(engine, 2, Window(), "minute")
    totals = health.reason_totals(reasons, quarantined=5)
    assert dict(zip(totals["reason"], totals["records"], strict=True)) == EXPECTED_REASONS
    assert totals["reason"].iloc[0] == "missing_operator"  # most frequent first
    assert totals.set_index("reason").loc["missing_operator", "share"] == pytest.approx(0.4)
    assert reasons["bucket"].dt.tz is not None
    first = health.query_quarantine_reasons(engine, 0, Window(), "hour")
    assert sorted(first["reason"]) == ["invalid_utf8", "malformed_json"]


def test_reason_totals_of_nothing():
    empty = health.reason_totals(pd.DataFrame(columns=["bucket", "reason", "records"]))
    assert empty.empty
    assert list(empty.columns) == ["reason", "records", "share"]


def test_samples_are_newest_first_raw_and_cut(engine):
    samples = health.query_quarantine_samples(engine, 2, Window())
    assert len(samples) == 5
    assert samples["batch_id"].tolist() == [1, 1, 1, 0, 0]
    by_reasons = samples.set_index("reasons")

    binary = by_reasons.loc["invalid_utf8"]
    assert binary["encoding"] == "base64"
    assert binary["payload"] == base64.b64encode(NOT_UTF8).decode("ascii")
    assert not binary["truncated"]

    assert by_reasons.loc["malformed_json", "payload"] == "not json"
    assert by_reasons.loc["malformed_json", "encoding"] == "utf-8"
    assert by_reasons.loc["out_of_range_status, out_of_range_signal_dbm", "payload"].startswith(
        '{"event_id": "b-2"'
    )

    long = by_reasons.loc["missing_event_id, missing_event_time, missing_operator, missing_status"]
    assert long["truncated"]
    assert long["payload"] == LONG_PAYLOAD[:2000]
    assert long["payload_chars"] == len(LONG_PAYLOAD)


def test_samples_of_one_reason(engine):
    samples = health.query_quarantine_samples(engine, 2, Window(), "missing_operator")
    assert len(samples) == 2
    assert samples["reasons"].str.contains("missing_operator").all()
    assert health.query_quarantine_samples(engine, 2, Window(), "no_such_reason").empty
    assert len(health.query_quarantine_samples(engine, 2, Window(), "")) == 5


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (["a", "b"], "a, b"),
        ("[malformed_json, missing_operator]", "malformed_json, missing_operator"),
        ("[]", ""),
        (None, ""),
    ],
)
def test_reasons_read_the_same_from_either_engine(value, text):
    assert health._reason_text(value) == text


def test_shorten_keeps_one_line():
    assert health.shorten("a\nb\r\nc") == "a⏎b⏎c"
    cut = health.shorten("x" * 500, limit=10)
    assert cut == "x" * 9 + "…"
    assert health.shorten("short") == "short"


# --- the stream ---------------------------------------------------------------------------


def test_a_stream_that_does_not_answer_is_reported_not_raised():
    settings = load_settings(emulator_port=free_port())
    status = kinesis.check_stream(kinesis.stream_client(settings, 0.5), settings)
    assert not status.answers
    assert status.open_shards is None
    assert status.endpoint == f"http://127.0.0.1:{settings.emulator_port}"
    assert "EndpointConnectionError" in status.detail
    assert status.seconds < 2


@pytest.fixture
def aws_settings(monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    return load_settings(
        mode="aws",
        lake_uri="s3://bucket/lake",
        athena_workgroup="wg",
        athena_database="db",
        stream_name="health-test",
        region="eu-west-1",
    )


def test_in_aws_mode_the_real_client_reports_shards(aws_settings):
    from moto import mock_aws

    with mock_aws():
        client = kinesis.stream_client(aws_settings)
        client.create_stream(StreamName="health-test", ShardCount=3)
        status = kinesis.check_stream(client, aws_settings)
    assert status.answers
    assert status.status == "ACTIVE"
    assert status.open_shards == 3
    assert status.detail is None
    assert status.endpoint == "AWS Kinesis (eu-west-1)"


def test_a_missing_stream_answers_with_what_to_do(aws_settings):
    from moto import mock_aws

    with mock_aws():
        status = kinesis.check_stream(kinesis.stream_client(aws_settings), aws_settings)
    assert status.answers
    assert status.open_shards is None
    assert "stream health-test does not exist yet" in status.detail


@pytest.fixture(scope="module")
def spread_quarantine(spark, tmp_path_factory) -> Path:
    """Quarantined records three days ago, two hours ago and one hour ago: 15, 25 and 5,
    every fifth a missing operator and the rest not JSON."""
    now = datetime.now(UTC).replace(microsecond=0)
    starts = [now - timedelta(days=3), now - timedelta(hours=2), now - timedelta(hours=1)]
    clock = [tick for start in starts for tick in (start, start + timedelta(seconds=1))]
    serial = iter(range(1_000))

    def bad(n: int) -> list[str]:
        return [
            event(event_id=f"q-{k}", operator=...) if k % 5 == 0 else f"not json {k}"
            for k in (next(serial) for _ in range(n))
        ]

    root = tmp_path_factory.mktemp("spread") / "lake"
    return build_clocked_lake(spark, root, [bad(15), bad(25), bad(5)], clock)


@pytest.mark.parametrize(
    ("reason", "queries"),
    [("", 1), ("missing_operator", 2)],
    ids=["the last day holds a sample", "too few in the last day"],
)
def test_samples_read_the_last_day_first_and_answer_as_the_whole_window(
    monkeypatch, spread_quarantine, reason, queries
):
    """30 records in the last day: the day alone answers. 6 of one reason there: the whole
    window is read. Either way the samples are the whole window's newest."""
    from backend.queries import run_query

    engine = DuckDBEngine(spread_quarantine)
    whole = run_query(
        engine, "health_quarantine_samples", batch=2, reason=reason, **Window().params()
    )
    calls = record_queries(monkeypatch)
    samples = health.query_quarantine_samples(engine, 2, Window(), reason)
    assert len(calls) == queries
    assert len(samples) == min(health.SAMPLE_LIMIT, len(whole))
    assert samples["sequence_number"].tolist() == whole["sequence_number"].tolist()
    assert samples["batch_id"].tolist() == whole["batch_id"].astype(int).tolist()
