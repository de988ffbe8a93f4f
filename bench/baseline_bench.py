"""Baseline benchmark (bench): the naive designs next to TelcoPulse's, on the same events.

Builds ``--hours`` of synthetic events at ``--rate`` (the mix of ``bench.history``),
cut into 2-second micro-batches, with one stretch where the job was down for
``--outage-minutes``: everything sent meanwhile arrives in a single backlog batch, and
signal was poor then (a degraded cell is what sends people to the dashboard). Then asks
"average signal per operator over the whole range" three ways:

- ours: the job's one-minute gold, compacted (``to_operator_minute`` over the range, the
  rows a compaction leaves), through the real ``kpi_signal`` SQL: a ratio of sums;
- naive averages: one file per micro-batch holding each operator's average signal, as
  pipelines that write per-batch averages keep them, averaged again at query time;
- silver scan: the average computed from every event in silver (one file per batch).

The silver scan is the ground truth; it is also what a KPI costs without gold. Query time
is the median of ``--runs`` DuckDB runs; bytes are what DuckDB scanned (``measure_io``),
the stand-in for Athena's bytes billed. Usage:

    .venv/bin/python -m bench.baseline_bench [--hours 6] [--rate 200] [--outage-minutes 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pyspark.sql import functions as F

from backend.engine import DuckDBEngine
from backend.queries import Window, run_kpi
from bench.history import TRIGGER_SECONDS, device_table, precision_quantiles, synthetic_silver
from glue_job.lake import ParquetLake
from glue_job.schemas import OPS_SCHEMA
from glue_job.spark_conf import build_spark
from glue_job.transforms import to_operator_minute

DEGRADED_DB = 12.0  # how much worse signal was while the job was down


def build(root: Path, *, hours: float, rate: int, outage_minutes: float, seed: int) -> dict:
    spark = build_spark("telcopulse-bench-baseline", **{"spark.driver.memory": "4g"})
    try:
        end = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
        start = end - timedelta(hours=hours)
        seconds = round(hours * 3600)
        outage_start = start + timedelta(seconds=seconds / 2)
        outage_end = outage_start + timedelta(minutes=outage_minutes)
        silver = synthetic_silver(
            spark,
            device_table(spark),
            precision_quantiles(),
            start=start,
            seconds=seconds,
            rate=rate,
            seed=seed,
        )
        down = (F.col("event_time") >= F.lit(outage_start)) & (
            F.col("event_time") < F.lit(outage_end)
        )
        batch = F.floor(
            (F.unix_timestamp("event_time") - F.lit(int(start.timestamp()))) / TRIGGER_SECONDS
        )
        backlog_batch = int((outage_end - start).total_seconds()) // TRIGGER_SECONDS
        silver = (
            silver.withColumn(
                "signal_dbm",
                F.when(down, F.col("signal_dbm") - DEGRADED_DB).otherwise(F.col("signal_dbm")),
            )
            .withColumn("batch", F.when(down, F.lit(backlog_batch)).otherwise(batch).cast("long"))
            .persist()
        )
        events = silver.count()
        # Silver, one file per batch, as the job writes it.
        silver.select("batch", "operator", "signal_dbm").repartition("batch").write.partitionBy(
            "batch"
        ).parquet(str(root / "silver"))
        # The naive design's per-batch averages, one file per batch.
        (
            silver.groupBy("batch", "operator")
            .agg(F.avg("signal_dbm").alias("avg_signal_dbm"))
            .repartition("batch")
            .write.partitionBy("batch")
            .parquet(str(root / "naive"))
        )
        # Ours: what compaction leaves of the same events, one row per minute and operator.
        lake = ParquetLake(spark, str(root / "lake"))
        lake.write("gold_operator_minute", to_operator_minute(silver.drop("batch")), 0)
        commit = {f.name: None for f in OPS_SCHEMA.fields} | {"batch_date": start.date()}
        lake.write("ops", spark.createDataFrame([commit], OPS_SCHEMA), 0)
        batches = silver.select("batch").distinct().count()
        silver.unpersist()
    finally:
        spark.stop()
    return {
        "hours": hours,
        "rate": rate,
        "events": events,
        "batches": batches,
        "outage_minutes": outage_minutes,
        "backlog_batch_events": round(rate * outage_minutes * 60),
        "start": start,
        "end": end,
    }


def timed(engine: DuckDBEngine, run, runs: int) -> tuple[object, float, int]:
    result = run()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    return result, statistics.median(times) * 1000, engine.last_bytes_read or 0


def measure(root: Path, facts: dict, runs: int) -> dict:
    window = Window(since=facts["start"], until=facts["end"])
    ours_engine = DuckDBEngine(root / "lake", measure_io=True)
    ours, ours_ms, ours_bytes = timed(
        ours_engine, lambda: run_kpi(ours_engine, "kpi_signal", window), runs
    )
    plain = DuckDBEngine(root / "lake", measure_io=True)
    glob = f"read_parquet('{root}/%s/batch=*/*.parquet', hive_partitioning = true)"
    naive, naive_ms, naive_bytes = timed(
        plain,
        lambda: plain.run(
            f"SELECT operator, avg(avg_signal_dbm) AS avg_signal_dbm FROM {glob % 'naive'} "
            "GROUP BY operator ORDER BY operator"
        ),
        runs,
    )
    truth, silver_ms, silver_bytes = timed(
        plain,
        lambda: plain.run(
            f"SELECT operator, avg(signal_dbm) AS avg_signal_dbm, count(signal_dbm) AS samples "
            f"FROM {glob % 'silver'} GROUP BY operator ORDER BY operator"
        ),
        runs,
    )
    exact = truth.set_index("operator")["avg_signal_dbm"]
    ours_error = (ours.set_index("operator")["avg_signal_dbm"] - exact).abs()
    naive_error = (naive.set_index("operator")["avg_signal_dbm"] - exact).abs()
    return {
        "ours": {"ms": ours_ms, "bytes": ours_bytes, "max_error_db": float(ours_error.max())},
        "naive_averages": {
            "ms": naive_ms,
            "bytes": naive_bytes,
            "max_error_db": float(naive_error.max()),
            "worst_operator": str(naive_error.idxmax()),
            "mean_error_db": float(naive_error.mean()),
        },
        "silver_scan": {"ms": silver_ms, "bytes": silver_bytes, "max_error_db": 0.0},
        "per_operator": [
            {
                "operator": op,
                "exact": float(exact[op]),
                "ours": float(ours.set_index("operator")["avg_signal_dbm"][op]),
                "naive": float(naive.set_index("operator")["avg_signal_dbm"][op]),
            }
            for op in exact.index
        ],
    }


def run(*, hours: float, rate: int, outage_minutes: float, runs: int, seed: int = 11, log=print):
    with tempfile.TemporaryDirectory(prefix="telcopulse-baseline-") as tmp:
        root = Path(tmp)
        log(f"baseline: {hours:g} h at {rate} events/s, a {outage_minutes:g}-minute backlog")
        facts = build(root, hours=hours, rate=rate, outage_minutes=outage_minutes, seed=seed)
        figures = measure(root, facts, runs)
    facts["start"], facts["end"] = str(facts["start"]), str(facts["end"])
    return {**facts, **figures}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=6)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--outage-minutes", type=float, default=10)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    figures = run(
        hours=args.hours,
        rate=args.rate,
        outage_minutes=args.outage_minutes,
        runs=args.runs,
        log=lambda m: print(m, file=sys.stderr),
    )
    print(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
