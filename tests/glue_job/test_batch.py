"""process_batch on static DataFrames: every layer, dedup, reconciliation and retries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pyarrow.parquet as pq
import pytest
from helpers import build_lake, drop_running_figures, event, raw_rows

from backend.engine import DuckDBEngine
from glue_job.batch import BatchProcessor, SoFar
from glue_job.lake import ParquetLake
from glue_job.schemas import RAW_SCHEMA
from glue_job.transforms import to_silver, valid_events, validate_records

pytestmark = pytest.mark.glue  # runs on Glue 5.0's runtime too (Makefile: test)


def table(root, name):
    return DuckDBEngine(root).run(f"SELECT * FROM {name}")


def test_layers_reconcile_and_dedup_first_arrival_wins(spark, tmp_path):
    batch0 = [
        event(event_id="a", operator="movistar", signal_dbm=-70.0),
        event(event_id="a", operator="Orange", signal_dbm=-99.0),  # later duplicate in batch
        event(event_id="b", operator="Movistar ", signal_dbm=-90.0, postal_code=None),
        "not json",
        event(event_id="c", signal_dbm=5),
    ]
    batch1 = [event(event_id="b", operator="Orange"), event(event_id="d", status=1)]
    root = build_lake(spark, tmp_path / "lake", [batch0, batch1])

    ops = table(root, "ops").sort_values("batch_id")
    assert ops[
        ["records_read", "silver_rows", "quarantine_rows", "duplicates"]
    ].values.tolist() == [
        [5, 2, 2, 1],
        [2, 1, 0, 1],
    ]
    assert (ops.bronze_rows == ops.silver_rows + ops.quarantine_rows + ops.duplicates).all()

    silver = table(root, "silver").set_index("event_id")
    assert sorted(silver.index) == ["a", "b", "d"]
    assert silver.loc["a", "operator"] == "Movistar"  # the first arrival, canonicalised
    assert silver.loc["a", "signal_dbm"] == -70.0
    assert silver.loc["b", "operator"] == "Movistar"
    assert silver.loc["d", "status_label"] == "OUT_OF_SERVICE"

    quarantine = table(root, "quarantine")
    assert sorted(map(list, quarantine.reasons)) == [
        ["malformed_json"],
        ["out_of_range_signal_dbm"],
    ]
    assert set(quarantine.payload) >= {"not json"}
    assert len(table(root, "bronze")) == 7


def test_gold_partials_are_sums_of_silver(spark, tmp_path):
    payloads = [
        event(event_id=f"e{i}", signal_dbm=float(-60 - i), precision_m=float(i), status=i % 4)
        for i in range(60)
    ]
    root = build_lake(spark, tmp_path / "lake", [payloads[:25], payloads[25:]])
    gold = table(root, "gold_operator_minute")
    assert gold.events.sum() == 60
    assert gold.signal_sum.sum() == sum(-60 - i for i in range(60))
    assert gold.signal_count.sum() == 60
    assert gold.precision_sum.sum() == sum(range(60))
    bands = gold[["signal_excellent", "signal_good", "signal_fair", "signal_poor"]].sum()
    assert bands.tolist() == [21, 10, 10, 19]  # -60..-80 | -81..-90 | -91..-100 | -101..-119
    postal = table(root, "gold_postal_status_minute")
    assert postal.groupby("status_label").events.sum().to_dict() == {
        "IN_SERVICE": 15,
        "OUT_OF_SERVICE": 15,
        "EMERGENCY_ONLY": 15,
        "POWER_OFF": 15,
    }
    assert postal.latitude_sum.sum() == pytest.approx(41.39 * 60)
    assert postal.position_count.sum() == 60


def test_retried_batch_replaces_partial_output(spark, tmp_path):
    lake = ParquetLake(spark, str(tmp_path / "lake"))
    processor = BatchProcessor(spark, lake, log=lambda _m: None)
    batch = spark.createDataFrame(raw_rows([event(event_id="x"), event(event_id="y")]), RAW_SCHEMA)
    # A crashed first attempt: silver written, gold and _ops never were.
    junk = spark.createDataFrame(raw_rows([event(event_id="junk")]), RAW_SCHEMA)

    validated = validate_records(junk, datetime.now(UTC))
    none = spark.createDataFrame([], "shard_id string, sequence_number string")
    lake.write("silver", to_silver(valid_events(validated), none), 0)

    processor.process_batch(batch, 0)
    assert sorted(table(lake.root, "silver").event_id) == ["x", "y"]

    # Replaying a committed batch (crash after _ops, before Spark's commit) changes nothing.
    assert processor.process_batch(batch, 0) is None
    restarted = BatchProcessor(spark, lake, log=lambda _m: None)
    assert restarted.process_batch(batch, 0) is None
    assert sorted(table(lake.root, "silver").event_id) == ["x", "y"]


def test_restart_rebuilds_dedup_index_from_committed_silver(spark, tmp_path):
    root = tmp_path / "lake"
    build_lake(spark, root, [[event(event_id="p"), event(event_id="q")]])
    lake = ParquetLake(spark, str(root))
    restarted = BatchProcessor(spark, lake, log=lambda _m: None)
    assert len(restarted.seen) == 2
    again = spark.createDataFrame(raw_rows([event(event_id="p"), event(event_id="r")]), RAW_SCHEMA)
    stats = restarted.process_batch(again, 1)
    assert (stats["silver_rows"], stats["duplicates"]) == (1, 1)
    assert sorted(table(root, "silver").event_id) == ["p", "q", "r"]


def test_restart_after_a_first_batch_killed_before_any_file_landed(spark, tmp_path):
    # SIGKILL mid-write of batch 0 can leave a table's directories with no file in them.
    root = tmp_path / "lake"
    for table_dir in ("silver/event_date=2026-12-01", "compactions", "quarantine/ingest_date=x"):
        (root / table_dir / "commit=0" / "_temporary").mkdir(parents=True)
    lake = ParquetLake(spark, str(root))
    restarted = BatchProcessor(spark, lake, log=lambda _m: None)
    assert len(restarted.seen) == 0
    batch = spark.createDataFrame(raw_rows([event(event_id="k")]), RAW_SCHEMA)
    assert restarted.process_batch(batch, 0)["silver_rows"] == 1
    assert sorted(table(root, "silver").event_id) == ["k"]


def test_empty_batch_still_commits(spark, tmp_path):
    lake = ParquetLake(spark, str(tmp_path / "lake"))
    processor = BatchProcessor(spark, lake, log=lambda _m: None)
    stats = processor.process_batch(spark.createDataFrame([], RAW_SCHEMA), 0)
    assert stats["records_read"] == 0
    assert lake.last_committed() == 0


# The running figures each commit row carries (glue_job.batch.SoFar), in OPS's order.
SO_FAR = list(SoFar.COLUMNS)


def commit_rows(root) -> pd.DataFrame:
    """Every ``_ops`` row by batch, file by file: files with and without the running
    figures (``drop_running_figures``) do not read as one dataset."""
    rows = pd.concat(
        pq.read_table(p, partitioning=None).to_pandas() for p in (root / "_ops").rglob("*.parquet")
    )
    return rows.sort_values("batch_id")


def so_far_of(ops, batch: int) -> list:
    """What the running figures of ``batch`` must be: over every row up to it that read
    records, their count, and the newest commit, event and arrival; over those that wrote
    silver, the newest commit and arrival."""
    busy = ops[(ops.batch_id <= batch) & (ops.records_read > 0)]
    newest = (busy[column].max() for column in ("batch_end", "max_event_time", "max_arrival_time"))
    silver = busy[busy.silver_rows > 0]
    return [len(busy), *newest, silver.batch_end.max(), silver.max_arrival_time.max()]


def test_each_commit_row_carries_the_running_freshness_figures_across_a_restart(spark, tmp_path):
    late = (datetime.now(UTC) - timedelta(hours=3)).isoformat()
    batches = [
        [event(event_id="a")],
        ["not json"],  # read, all quarantined: counts, with no event of its own
        [],  # read nothing: changes nothing
        [event(event_id="late", event_time=late)],  # older than the newest event
    ]
    root = build_lake(spark, tmp_path / "lake", batches[:2])
    restarted = BatchProcessor(spark, ParquetLake(spark, str(root)), log=lambda _m: None)
    for batch_id, payloads in enumerate(batches[2:], start=2):
        rows = raw_rows(payloads, start=10 * batch_id)
        restarted.process_batch(spark.createDataFrame(rows, RAW_SCHEMA), batch_id)

    ops = table(root, "ops").sort_values("batch_id")
    assert ops.batches_so_far.tolist() == [1, 2, 2, 3]
    for row in ops.itertuples():
        assert [getattr(row, c) for c in SO_FAR] == so_far_of(ops, row.batch_id), row.batch_id
    assert ops.newest_event_so_far.iloc[-1] == ops.max_event_time.iloc[0]  # not the late one


def test_a_lake_from_before_the_running_figures_gets_them_from_its_rows(spark, tmp_path):
    root = build_lake(spark, tmp_path / "lake", [[event(event_id="a")], ["nope"]])
    drop_running_figures(root)  # commit rows as a job before these columns wrote them
    restarted = BatchProcessor(spark, ParquetLake(spark, str(root)), log=lambda _m: None)
    fresh = spark.createDataFrame(raw_rows([event(event_id="b")], start=10), RAW_SCHEMA)
    restarted.process_batch(fresh, 2)

    rows = commit_rows(root)
    newest = rows[rows.batch_id == 2].iloc[0]
    assert [newest[c] for c in SO_FAR] == so_far_of(rows, 2)
    assert newest.batches_so_far == 3


def test_a_lake_from_before_the_silver_figures_gets_them_from_its_rows(spark, tmp_path):
    """Commit rows with the running figures but not their silver ones (a job of
    2026-12-05): the next commit row has them, from a scan, even when its own batch wrote
    no silver row."""
    root = build_lake(spark, tmp_path / "lake", [[event(event_id="a")], ["nope"]])
    drop_running_figures(root, SoFar.SILVER_COLUMNS)
    restarted = BatchProcessor(spark, ParquetLake(spark, str(root)), log=lambda _m: None)
    quarantined = spark.createDataFrame(raw_rows(["still not json"], start=10), RAW_SCHEMA)
    restarted.process_batch(quarantined, 2)

    rows = commit_rows(root)
    newest = rows[rows.batch_id == 2].iloc[0]
    assert [newest[c] for c in SO_FAR] == so_far_of(rows, 2)
    assert newest.silver_commit_so_far == rows[rows.batch_id == 0].batch_end.iloc[0]
    assert newest.last_commit_so_far == newest.batch_end
