"""Per-batch writer (bronze, silver, quarantine, gold, _ops): ``process_batch(df, batch_id)``.

Exactly once, visibly: every output of batch N lives under a ``batch_id=N``
directory that a retry clears and rewrites, and the ``_ops`` row of batch N is
written last. Readers only count batches up to the newest committed one. A
batch that is already committed (the job died after ``_ops`` but before Spark's
own commit log) is skipped on replay.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta

import numpy as np
from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from glue_job.dedup import EVENT_KEY, ROW_ID, SeenEvents, choose_silver
from glue_job.schemas import OPS_SCHEMA
from glue_job.tables import TABLES
from glue_job.transforms import (
    to_bronze,
    to_operator_minute,
    to_postal_status_minute,
    to_quarantine,
    to_silver,
    valid_events,
    validate_records,
)


class ParquetLake:
    """Sink: batch-keyed Parquet tables under one root (a local path or an s3:// URI)."""

    def __init__(self, spark: SparkSession, root: str) -> None:
        self.spark = spark
        self.root = root.rstrip("/")

    def path(self, table: str) -> str:
        return f"{self.root}/{TABLES[table].path}"

    def _hadoop_path(self, path: str):
        jvm = self.spark.sparkContext._jvm
        hpath = jvm.org.apache.hadoop.fs.Path(path)
        return hpath, hpath.getFileSystem(self.spark.sparkContext._jsc.hadoopConfiguration())

    def clear_batch(self, table: str, batch_id: int) -> None:
        """Remove whatever an earlier attempt of this batch left in ``table``."""
        depth = len(TABLES[table].partitions)
        pattern = "/".join([self.path(table), *["*"] * depth, f"batch_id={batch_id}"])
        hpath, fs = self._hadoop_path(pattern)
        for status in fs.globStatus(hpath) or []:
            fs.delete(status.getPath(), True)

    def write(self, table: str, df: DataFrame, batch_id: int) -> int:
        """Replace batch ``batch_id`` of ``table`` with ``df``; return the rows written."""
        self.clear_batch(table, batch_id)
        partitions = [*TABLES[table].partitions, "batch_id"]
        # Counting while writing saves a Spark job per table.
        written = Observation(f"{table}-{batch_id}")
        (
            df.withColumn("batch_id", F.lit(batch_id).cast("long"))
            .observe(written, F.count(F.lit(1)).alias("rows"))
            .coalesce(1)
            .write.mode("append")
            .partitionBy(*partitions)
            .parquet(self.path(table))
        )
        return int(written.get["rows"])

    def committed_batches(self) -> list[int]:
        """Ids of batches whose ``_ops`` row exists, in order."""
        hpath, fs = self._hadoop_path(f"{self.path('ops')}/batch_id=*")
        ids = []
        for status in fs.globStatus(hpath) or []:
            name = status.getPath().getName()
            ids.append(int(name.split("=", 1)[1]))
        return sorted(ids)

    def read(self, table: str) -> DataFrame | None:
        hpath, fs = self._hadoop_path(self.path(table))
        if not fs.exists(hpath):
            return None
        return self.spark.read.parquet(self.path(table))


def load_seen_events(lake: ParquetLake, committed: int | None, horizon: timedelta) -> SeenEvents:
    """Rebuild the dedup index from committed silver within the horizon."""
    index = SeenEvents(horizon=horizon)
    silver = lake.read("silver")
    if silver is None or committed is None:
        return index
    since = datetime.now(UTC) - horizon
    keys = (
        silver.where((F.col("batch_id") <= committed) & (F.col("ingest_time") >= since))
        .select(
            F.xxhash64("event_id").alias(EVENT_KEY),
            F.floor(F.unix_timestamp("ingest_time") / 3600).cast("long").alias("hour"),
        )
        .toPandas()
    )
    for hour, group in keys.groupby("hour"):
        index.buckets[int(hour)] = np.unique(group[EVENT_KEY].to_numpy(dtype=np.int64))
    return index


class BatchProcessor:
    """The ``foreachBatch`` function: refine one micro-batch into every layer."""

    def __init__(
        self,
        spark: SparkSession,
        lake: ParquetLake,
        *,
        dedup_horizon: timedelta = timedelta(hours=24),
        clock=lambda: datetime.now(UTC),
        log=None,
    ) -> None:
        self.spark = spark
        self.lake = lake
        self.parallelism = spark.sparkContext.defaultParallelism
        self.clock = clock
        self.log = log or (lambda message: print(message, file=sys.stderr, flush=True))
        committed = lake.committed_batches()
        self.last_committed: int | None = committed[-1] if committed else None
        self.seen = load_seen_events(lake, self.last_committed, dedup_horizon)

    def __call__(self, raw: DataFrame, batch_id: int) -> None:
        self.process_batch(raw, batch_id)

    def process_batch(self, raw: DataFrame, batch_id: int) -> dict | None:
        if self.last_committed is not None and batch_id <= self.last_committed:
            self.log(f"batch {batch_id} is already committed; skipping its replay")
            return None
        started = self.clock()
        tick = time.perf_counter()

        if raw.rdd.getNumPartitions() < self.parallelism:
            raw = raw.repartition(self.parallelism)  # validation is Python: use every core
        validated = validate_records(raw, started).persist()
        try:
            stats, new_keys = self._write_layers(validated, batch_id, started)
        finally:
            validated.unpersist()

        stats.update(
            batch_id=batch_id,
            batch_start=started,
            batch_end=self.clock(),
            duration_seconds=round(time.perf_counter() - tick, 3),
        )
        self._commit(stats, batch_id)
        if len(new_keys):
            self.seen.add(new_keys, started)
        self.log(
            f"batch {batch_id}: {stats['records_read']} read, {stats['silver_rows']} silver, "
            f"{stats['quarantine_rows']} quarantined, {stats['duplicates']} duplicates "
            f"in {stats['duration_seconds']:.2f}s"
        )
        return stats

    def _write_layers(
        self, validated: DataFrame, batch_id: int, started: datetime
    ) -> tuple[dict, np.ndarray]:
        """Write bronze, quarantine, silver and gold; return the _ops stats and new event keys."""
        # Bronze gets every record; counting while writing it saves a Spark job.
        observed = Observation(f"batch-{batch_id}")
        self.lake.write(
            "bronze",
            to_bronze(
                validated.observe(
                    observed,
                    F.count(F.lit(1)).alias("records"),
                    F.count(F.when(F.size("reasons") > 0, 1)).alias("quarantined"),
                    F.max("arrival_time").alias("max_arrival"),
                )
            ),
            batch_id,
        )
        totals = observed.get
        records, quarantined = int(totals["records"]), int(totals["quarantined"])
        stats: dict = {
            "records_read": records,
            "bronze_rows": records,
            "quarantine_rows": quarantined,
            "silver_rows": 0,
            "duplicates": 0,
            "operator_minute_rows": 0,
            "postal_status_minute_rows": 0,
            "max_event_time": None,
            "max_arrival_time": totals["max_arrival"],
            "source_lag_seconds": None,
        }
        if totals["max_arrival"] is not None:
            stats["source_lag_seconds"] = round(
                (started - totals["max_arrival"].astimezone(UTC)).total_seconds(), 3
            )
        if records == 0:
            return stats, np.empty(0, dtype=np.int64)
        if quarantined:
            self.lake.write("quarantine", to_quarantine(validated), batch_id)

        valid = valid_events(validated).persist()
        try:
            arrivals = valid.select(EVENT_KEY, "event_time", "arrival_time", *ROW_ID).toPandas()
            keep = choose_silver(arrivals, self.seen)
            silver_rows = int(keep.sum())
            stats["silver_rows"] = silver_rows
            stats["duplicates"] = records - quarantined - silver_rows
            if silver_rows:
                stats["max_event_time"] = arrivals["event_time"][keep].max().to_pydatetime()
                dropped = self.spark.createDataFrame(
                    arrivals.loc[~keep, ROW_ID], "shard_id string, sequence_number string"
                )
                silver = to_silver(valid, dropped).persist()
                try:
                    self.lake.write("silver", silver, batch_id)
                    stats["operator_minute_rows"] = self.lake.write(
                        "gold_operator_minute", to_operator_minute(silver), batch_id
                    )
                    stats["postal_status_minute_rows"] = self.lake.write(
                        "gold_postal_status_minute", to_postal_status_minute(silver), batch_id
                    )
                finally:
                    silver.unpersist()
        finally:
            valid.unpersist()
        new_keys = arrivals[EVENT_KEY].to_numpy(dtype=np.int64)[keep]
        return stats, new_keys

    def _commit(self, stats: dict, batch_id: int) -> None:
        row = {f.name: stats.get(f.name) for f in OPS_SCHEMA.fields}
        ops = self.spark.createDataFrame([row], OPS_SCHEMA).drop("batch_id")
        self.lake.write("ops", ops, batch_id)  # the commit point: written last
        self.last_committed = batch_id
