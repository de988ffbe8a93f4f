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
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from glue_job.schemas import OPS_SCHEMA
from glue_job.tables import TABLES
from glue_job.transforms import (
    EVENT_KEY,
    first_arrivals,
    to_bronze,
    to_operator_minute,
    to_postal_status_minute,
    to_quarantine,
    to_silver,
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

    def write(self, table: str, df: DataFrame, batch_id: int) -> None:
        self.clear_batch(table, batch_id)
        partitions = [*TABLES[table].partitions, "batch_id"]
        (
            df.withColumn("batch_id", F.lit(batch_id).cast("long"))
            .coalesce(1)
            .write.mode("append")
            .partitionBy(*partitions)
            .parquet(self.path(table))
        )

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


@dataclass
class SeenEvents:
    """Dedup index: 64-bit keys of event ids already in silver, bucketed by ingest hour.

    Holding hashes (8 bytes each) rather than ids keeps a day at 10k events/s within
    a few GB; a 64-bit collision, about one in 10^7 per day at that volume, would
    count one event as a duplicate (it stays in bronze either way).
    """

    horizon: timedelta = timedelta(hours=24)
    buckets: dict[int, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return sum(len(keys) for keys in self.buckets.values())

    def contains(self, keys: np.ndarray) -> np.ndarray:
        found = np.zeros(len(keys), dtype=bool)
        for bucket in self.buckets.values():
            found |= np.isin(keys, bucket, assume_unique=False)
        return found

    def add(self, keys: np.ndarray, ingest_time: datetime) -> None:
        hour = int(ingest_time.timestamp()) // 3600
        current = self.buckets.get(hour)
        merged = keys if current is None else np.concatenate([current, keys])
        self.buckets[hour] = np.unique(merged.astype(np.int64))
        self.expire(ingest_time)

    def expire(self, now: datetime) -> None:
        oldest = int((now - self.horizon).timestamp()) // 3600
        for hour in [h for h in self.buckets if h < oldest]:
            del self.buckets[hour]

    @classmethod
    def load(cls, lake: ParquetLake, committed: int | None, horizon: timedelta) -> SeenEvents:
        """Rebuild the index from committed silver within the horizon."""
        index = cls(horizon=horizon)
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
        self.clock = clock
        self.log = log or (lambda message: print(message, file=sys.stderr, flush=True))
        committed = lake.committed_batches()
        self.last_committed: int | None = committed[-1] if committed else None
        self.seen = SeenEvents.load(lake, self.last_committed, dedup_horizon)

    def __call__(self, raw: DataFrame, batch_id: int) -> None:
        self.process_batch(raw, batch_id)

    def process_batch(self, raw: DataFrame, batch_id: int) -> dict | None:
        if self.last_committed is not None and batch_id <= self.last_committed:
            self.log(f"batch {batch_id} is already committed; skipping its replay")
            return None
        started = self.clock()
        tick = time.perf_counter()

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
        totals = validated.agg(
            F.count(F.lit(1)).alias("records"),
            F.count(F.when(F.size("reasons") > 0, 1)).alias("quarantined"),
            F.max("arrival_time").alias("max_arrival"),
        ).first()
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

        self.lake.write("bronze", to_bronze(validated), batch_id)
        if quarantined:
            self.lake.write("quarantine", to_quarantine(validated), batch_id)

        first = first_arrivals(validated).persist()
        try:
            keys = first.select(EVENT_KEY).toPandas()[EVENT_KEY].to_numpy(dtype=np.int64)
            seen = self.seen.contains(keys)
            seen_keys = self.spark.createDataFrame(
                pd.DataFrame({EVENT_KEY: keys[seen]}), f"{EVENT_KEY} long"
            )
            silver = to_silver(first, seen_keys).persist()
            try:
                silver_rows = int(len(keys) - seen.sum())
                stats["silver_rows"] = silver_rows
                stats["duplicates"] = records - quarantined - silver_rows
                if silver_rows:
                    self.lake.write("silver", silver, batch_id)
                    operator_minute = to_operator_minute(silver).persist()
                    postal = to_postal_status_minute(silver).persist()
                    self.lake.write("gold_operator_minute", operator_minute, batch_id)
                    self.lake.write("gold_postal_status_minute", postal, batch_id)
                    stats["operator_minute_rows"] = operator_minute.count()
                    stats["postal_status_minute_rows"] = postal.count()
                    stats["max_event_time"] = silver.agg(F.max("event_time")).first()[0]
                    operator_minute.unpersist()
                    postal.unpersist()
            finally:
                silver.unpersist()
        finally:
            first.unpersist()
        return stats, keys[~seen]

    def _commit(self, stats: dict, batch_id: int) -> None:
        row = {f.name: stats.get(f.name) for f in OPS_SCHEMA.fields}
        ops = self.spark.createDataFrame([row], OPS_SCHEMA).drop("batch_id")
        self.lake.write("ops", ops, batch_id)  # the commit point: written last
        self.last_committed = batch_id
