"""The lake's S3 cost per batch: what a batch lists does not grow with history.

On S3 every directory listing is a billed LIST request that takes tens of milliseconds,
so a batch that lists every date and hour of every table gets slower and dearer each
day. Here the same steady batches run over a lake with one day of history and over one
with thirty, and each lists exactly the same paths (``ParquetLake.listings``).
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers import event, raw_rows

from glue_job.batch import BatchProcessor
from glue_job.defaults import DEFAULT_DEDUP_HORIZON_HOURS
from glue_job.lake import ParquetLake
from glue_job.schemas import RAW_SCHEMA

pytestmark = pytest.mark.glue  # runs on Glue 5.0's runtime too (Makefile: test)

TODAY = datetime.now(UTC).replace(minute=30, second=0, microsecond=0) - timedelta(hours=1)
DATE_LEVELS = ("ingest_date=", "event_date=", "batch_date=")


def batch_frame(spark, number: int, moment: datetime):
    payloads = [
        event(event_id=f"e{number}-{i}", event_time=(moment - timedelta(minutes=1)).isoformat())
        for i in range(5)
    ] + ["not json"]
    return spark.createDataFrame(raw_rows(payloads, start=number * 100), RAW_SCHEMA)


def with_history(spark, root: Path, days: int) -> Path:
    """One committed batch, its partitions repeated for each of ``days`` days back: the
    directory tree a lake of that age has, every table and every partition level."""
    processor = BatchProcessor(spark, ParquetLake(spark, str(root)), clock=lambda: TODAY)
    processor.process_batch(batch_frame(spark, 0, TODAY), 0)
    today = TODAY.date().isoformat()
    for source in [p for p in root.rglob("*") if p.is_dir() and p.name.endswith(today)]:
        if not source.name.startswith(DATE_LEVELS):
            continue
        for back in range(1, days):
            day = (TODAY.date() - timedelta(days=back)).isoformat()
            shutil.copytree(source, source.with_name(source.name.replace(today, day)))
    return root


def listings_per_batch(spark, root: Path, batches: int = 2) -> list[tuple[int, int]]:
    lake = ParquetLake(spark, str(root))
    processor = BatchProcessor(spark, lake, clock=lambda: TODAY + timedelta(minutes=5))
    counts = []
    for number in range(1, batches + 1):
        before = (lake.listings, lake.listed_paths)
        processor.process_batch(batch_frame(spark, number, TODAY), number)
        counts.append((lake.listings - before[0], lake.listed_paths - before[1]))
    return counts


def test_a_batch_lists_as_much_with_thirty_days_of_history_as_with_one(spark, tmp_path):
    one_day = with_history(spark, tmp_path / "one-day", days=1)
    month = with_history(spark, tmp_path / "thirty-days", days=30)
    assert len(list((month / "silver").glob("event_date=*"))) == 30
    assert len(list((month / "bronze").glob("ingest_date=*/ingest_hour=*"))) == 30

    small, large = listings_per_batch(spark, one_day), listings_per_batch(spark, month)
    assert small == large
    # One listing of _attempts per batch (it holds only the journaled-lake marker).
    assert small == [(1, 1)] * 2


def ops_days(now: datetime) -> tuple[str, ...]:
    """The _ops partitions of the day-long dedup horizon that ends at ``now``."""
    since = now - timedelta(hours=DEFAULT_DEDUP_HORIZON_HOURS)
    return (f"batch_date={since.date()}", f"batch_date={now.date()}")


class SpyLake(ParquetLake):
    def __init__(self, spark, root) -> None:
        super().__init__(spark, root)
        self.reads: list[tuple[str, tuple[str, ...]]] = []

    def read(self, table):
        self.reads.append((table, ("*",)))
        return super().read(table)

    def read_partitions(self, table, partitions):
        partitions = tuple(partitions)
        self.reads.append((table, partitions))
        return super().read_partitions(table, partitions)


def test_start_up_reads_only_the_dedup_horizons_partitions_of_silver(spark, tmp_path):
    root = with_history(spark, tmp_path / "lake", days=30)
    lake = SpyLake(spark, str(root))
    before = datetime.now(UTC)
    processor = BatchProcessor(spark, lake, clock=lambda: TODAY + timedelta(minutes=5))
    after = datetime.now(UTC)
    silver_reads = [partitions for table, partitions in lake.reads if table == "silver"]
    assert silver_reads == [(f"event_date={TODAY.date().isoformat()}",)]
    # The horizon's _ops days follow the wall clock (when records arrived), so they are
    # the dates of the 24 hours before start-up: reckoned from either side of it, in
    # case midnight passed while the processor started.
    ops_reads = [partitions for table, partitions in lake.reads if table == "ops"]
    assert ops_reads in ([ops_days(before)], [ops_days(after)])
    assert len(processor.seen) == 5  # the one batch's events, ingested within the horizon


def test_a_late_event_keeps_its_old_silver_partition_in_the_dedup_horizon(spark, tmp_path):
    """An event from weeks ago that arrived today is in the horizon: start-up reads its
    partition too, because today's _ops row names it."""
    root = with_history(spark, tmp_path / "lake", days=2)
    processor = BatchProcessor(spark, ParquetLake(spark, str(root)), clock=lambda: TODAY)
    old = (TODAY - timedelta(days=20)).isoformat()
    late = raw_rows([event(event_id="late-1", event_time=old)], start=900)
    processor.process_batch(spark.createDataFrame(late, RAW_SCHEMA), 1)

    lake = SpyLake(spark, str(root))
    restarted = BatchProcessor(spark, lake, clock=lambda: TODAY + timedelta(minutes=5))
    (silver_read,) = [partitions for table, partitions in lake.reads if table == "silver"]
    assert f"event_date={(TODAY - timedelta(days=20)).date()}" in silver_read
    again = raw_rows([event(event_id="late-1", event_time=old)], start=950)
    stats = restarted.process_batch(spark.createDataFrame(again, RAW_SCHEMA), 2)
    assert (stats["silver_rows"], stats["duplicates"]) == (0, 1)
