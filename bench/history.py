"""Gold history for benchmarks (bench): days of synthetic traffic written straight to gold.

Streaming a week through Kinesis would take a week, so this builds synthetic
silver rows in Spark with the mix of ``backend.synthetic`` (operators, postal-code
centroids, signal and precision spread, status mix, outages), refines them with
the job's own ``to_operator_minute`` / ``to_postal_status_minute``, and writes
them with ``ParquetLake.write`` plus a committed ``_ops`` row per batch. Invalid
records go through the job's real validation into quarantine.

The batches stand for compacted history: one per day, and one per hour for the
last ``--recent-hours`` (24), where the live job commits one every 2 s (over a
week, 300,000 batch directories per table, and up to 30 partial gold rows per
key and minute instead of one). Silver and bronze are not written: the dashboard
never reads them. The history ends at the current minute, so the "last 1 h"
window holds data. Usage:

    .venv/bin/python bench/history.py --home .telcopulse/bench [--days 7] [--rate 200]
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from backend.synthetic import (
    OUTAGE_SECONDS,
    OUTAGE_STATUS_MIX,
    SIGNAL_NOISE_DB,
    STATUS_MIX,
    SyntheticGenerator,
    load_profile,
)
from glue_job.batch import ParquetLake
from glue_job.contract import BOUNDS, STATUS_LABELS, canonical_operator
from glue_job.local_entry import build_spark
from glue_job.schemas import OPS_SCHEMA, QUARANTINE_SCHEMA, RAW_SCHEMA
from glue_job.transforms import (
    to_operator_minute,
    to_postal_status_minute,
    to_quarantine,
    validate_records,
)

MARKER = "history.json"  # what was written; only a directory holding it is ever wiped
OUTAGE_EVERY_S = 180  # one postal-code outage starts about every 3 minutes (as synthetic.py)
PRECISION_QUANTILES = 256
QUARANTINE_POOL = 600
# What the live job reports per 2-second trigger; a compacted batch has no measured lag.
SOURCE_LAG_SECONDS = 2.0


def device_table(spark: SparkSession) -> tuple[DataFrame, int, int]:
    """The profile's observed handsets: canonical operator, postal code, centroid, signal spread.

    Returns the table, the number of devices and the number of postal codes.
    """
    profile = load_profile()
    codes = sorted(profile.centroids)
    code_index = {code: i for i, code in enumerate(codes)}
    pooled = [v for values in profile.signal_by_operator.values() for v in values] or [-90.0]
    rows = []
    for i, template in enumerate(profile.templates):
        signals = profile.signal_by_operator.get(template.operator) or pooled
        mean = sum(signals) / len(signals)
        spread = math.sqrt(sum((v - mean) ** 2 for v in signals) / len(signals))
        code = template.postal_code
        lat, lon = profile.centroids.get(code, (template.latitude, template.longitude))
        rows.append(
            (
                i,
                canonical_operator(template.operator),
                code,
                code_index.get(code, -1),
                lat,
                lon,
                mean,
                math.hypot(spread, SIGNAL_NOISE_DB),
            )
        )
    schema = (
        "device int, operator string, postal_code string, code_index int, "
        "centre_lat double, centre_lon double, signal_mean double, signal_spread double"
    )
    return spark.createDataFrame(rows, schema), len(rows), len(codes)


def precision_quantiles() -> list[float]:
    """The observed GPS precision spread as evenly spaced quantiles (a small literal array)."""
    values = sorted(load_profile().precisions)
    step = (len(values) - 1) / max(1, PRECISION_QUANTILES - 1)
    return [values[round(i * step)] for i in range(PRECISION_QUANTILES)]


def pick(mix: tuple[tuple[int, float], ...], roll: Column) -> Column:
    """A status code drawn from ``mix`` by a uniform roll, as ``synthetic._pick`` does."""
    picked, edge = None, 0.0
    for value, share in mix:
        edge += share
        picked = F.when(roll < edge, value) if picked is None else picked.when(roll < edge, value)
    return picked.otherwise(mix[0][0])


def clamp(value: Column, field: str) -> Column:
    low, high = BOUNDS[field]
    return F.least(F.greatest(value, F.lit(low)), F.lit(high))


def synthetic_silver(
    spark: SparkSession,
    devices: tuple[DataFrame, int, int],
    precisions: list[float],
    *,
    start: datetime,
    seconds: int,
    rate: int,
    seed: int,
) -> DataFrame:
    """``rate`` events a second for ``seconds`` from ``start``: the silver columns gold reads."""
    table, n_devices, n_codes = devices
    epoch = F.lit(start.timestamp()) + F.col("id") / F.lit(rate)
    events = spark.range(seconds * rate).select(
        epoch.alias("epoch"),
        F.floor(F.rand(seed) * n_devices).cast("int").alias("device"),
        F.rand(seed + 1).alias("status_roll"),
        F.randn(seed + 2).alias("signal_z"),
        F.floor(F.rand(seed + 3) * len(precisions)).cast("int").alias("precision_i"),
        F.rand(seed + 4).alias("precision_roll"),
    )
    # Outages in event time: each 3-minute slot takes one postal code out for 30-120 s.
    slot = F.floor(F.col("epoch") / OUTAGE_EVERY_S)
    low, high = OUTAGE_SECONDS
    outage_code = F.pmod(F.xxhash64(slot, F.lit(seed)), F.lit(n_codes))
    outage_length = low + F.pmod(F.xxhash64(slot, F.lit(seed + 1)), F.lit(int(high - low) + 1))
    in_outage = (F.col("code_index") == outage_code) & (
        F.col("epoch") - slot * OUTAGE_EVERY_S < outage_length
    )
    status = F.when(in_outage, pick(OUTAGE_STATUS_MIX, F.col("status_roll"))).otherwise(
        pick(STATUS_MIX, F.col("status_roll"))
    )
    labels = F.array(*[F.lit(STATUS_LABELS[code]) for code in sorted(STATUS_LABELS)])
    signal = clamp(
        F.round(F.col("signal_mean") + F.col("signal_spread") * F.col("signal_z")), "signal_dbm"
    )
    precision = F.element_at(F.array(*map(F.lit, precisions)), F.col("precision_i") + 1)
    # synthetic.py scales by a log-normal factor (sigma 0.2); a uniform one of the same spread
    # is cheaper to draw.
    precision_factor = F.exp(0.2 * math.sqrt(3) * (2 * F.col("precision_roll") - 1))
    return (
        events.join(F.broadcast(table), "device")
        .withColumn("status", status.cast("int"))
        .select(
            F.timestamp_seconds("epoch").alias("event_time"),
            "operator",
            "status",
            F.element_at(labels, F.col("status") + 1).alias("status_label"),
            # Only a device in service reports a signal reading.
            F.when(F.col("status") == 0, signal).alias("signal_dbm"),
            clamp(F.round(precision * precision_factor, 1), "precision_m").alias("precision_m"),
            # Gold keeps only coordinate sums (for centroids), where synthetic.py's jitter
            # around the centre averages out: the centre itself is drawn.
            F.col("centre_lat").alias("latitude"),
            F.col("centre_lon").alias("longitude"),
            "postal_code",
        )
    )


def quarantine_pool(spark: SparkSession, seed: int) -> tuple[DataFrame, int]:
    """Bad records of every kind the producer makes, through the job's real validation:
    the quarantine rows, indexed, and how many there are."""
    generator = SyntheticGenerator(seed=seed, invalid_rate=1.0)
    arrival = datetime.now(UTC)
    raw = [
        (
            generator.next_record(),
            "telcopulse-events",
            "shardId-000000000000",
            str(i),
            "pk",
            arrival,
        )
        for i in range(QUARANTINE_POOL)
    ]
    validated = validate_records(spark.createDataFrame(raw, RAW_SCHEMA), arrival)
    columns = ["payload", "payload_base64", "reasons", "event_id", "shard_id"]
    rows = to_quarantine(validated).select(*columns).collect()
    indexed = [(i, *row) for i, row in enumerate(rows)]
    types = {f.name: f.dataType.simpleString() for f in QUARANTINE_SCHEMA}
    schema = ", ".join(["pool_index long", *(f"{name} {types[name]}" for name in columns)])
    return spark.createDataFrame(indexed, schema).persist(), len(indexed)


def synthetic_quarantine(
    spark: SparkSession,
    pool: tuple[DataFrame, int],
    *,
    start: datetime,
    seconds: int,
    count: int,
) -> DataFrame:
    """``count`` quarantined records spread over the batch's period, payloads from the pool."""
    rows, size = pool
    ingest = F.timestamp_seconds(F.lit(start.timestamp()) + F.col("id") * (seconds / max(count, 1)))
    return (
        spark.range(count)
        .select(
            F.col("id"),
            (F.col("id") % size).alias("pool_index"),
            ingest.alias("ingest_time"),
        )
        .join(F.broadcast(rows), "pool_index")
        .select(
            "payload",
            "payload_base64",
            "reasons",
            "event_id",
            "shard_id",
            F.format_string("%d%012d", F.lit(int(start.timestamp())), "id").alias(
                "sequence_number"
            ),
            F.col("ingest_time").alias("arrival_time"),
            "ingest_time",
            F.to_date("ingest_time").alias("ingest_date"),
        )
    )


def prepare_home(home: Path, force: bool) -> Path:
    """An empty lake under ``home``; refuses to wipe a directory this script did not make."""
    lake = home / "lake"
    if home.exists() and any(home.iterdir()):
        if not (home / MARKER).exists() and not force:
            raise SystemExit(
                f"{home} is not empty and was not made by bench/history.py: pick another --home"
            )
        shutil.rmtree(lake, ignore_errors=True)
    home.mkdir(parents=True, exist_ok=True)
    (home / MARKER).write_text(json.dumps({"state": "writing"}) + "\n")
    return lake


def batch_periods(
    start: datetime, end: datetime, recent_hours: int
) -> list[tuple[datetime, datetime]]:
    """Compacted history: one batch per day for older data, one per hour for the most recent
    ``recent_hours`` (so the dashboard's short windows still find whole batches)."""
    boundary = max(start, end - timedelta(hours=recent_hours))
    older, recent = [], []
    moment = boundary
    while moment > start:  # whole days back from the boundary; the oldest may be shorter
        older.insert(0, (max(start, moment - timedelta(days=1)), moment))
        moment -= timedelta(days=1)
    moment = boundary
    while moment < end:
        recent.append((moment, min(end, moment + timedelta(hours=1))))
        moment += timedelta(hours=1)
    return older + recent


def write_history(
    spark: SparkSession,
    lake_root: Path,
    *,
    days: float,
    rate: int,
    recent_hours: int,
    invalid_rate: float,
    seed: int,
    end: datetime,
    log=print,
) -> dict:
    """Write ``days`` of gold ending at ``end`` as committed batches (see ``batch_periods``)."""
    started = time.perf_counter()
    lake = ParquetLake(spark, str(lake_root))
    start = end - timedelta(days=days)
    periods = batch_periods(start, end, recent_hours)
    total_seconds = round((end - start).total_seconds())
    log(
        f"writing {days:g} days at {rate} events/s ({rate * total_seconds:,} events) ending "
        f"{end:%Y-%m-%d %H:%M} UTC to {lake_root}, as {len(periods)} batches: a day each, the "
        f"last {recent_hours} h an hour each (compacted history)"
    )
    silver = synthetic_silver(
        spark,
        device_table(spark),
        precision_quantiles(),
        start=start,
        seconds=total_seconds,
        rate=rate,
        seed=seed,
    )
    # One pass over the whole week per gold table: a minute lies inside one batch's period,
    # so refining everything at once and cutting it per batch gives the same rows as
    # refining batch by batch, without a Spark job per batch and table.
    gold: dict[str, DataFrame] = {}
    for table, transform in (
        ("gold_operator_minute", to_operator_minute),
        ("gold_postal_status_minute", to_postal_status_minute),
    ):
        tick = time.perf_counter()
        gold[table] = transform(silver).persist(StorageLevel.MEMORY_AND_DISK)
        rows = gold[table].count()
        log(f"  {table}: {rows:,} rows in {time.perf_counter() - tick:.0f} s")
    pool = quarantine_pool(spark, seed)

    def write_batch(numbered: tuple[int, tuple[datetime, datetime]]) -> dict:
        batch_id, (first, last) = numbered
        tick = time.perf_counter()
        in_batch = (F.col("minute") >= F.lit(first)) & (F.col("minute") < F.lit(last))
        rows = {
            table: lake.write(table, frame.where(in_batch), batch_id)
            for table, frame in gold.items()
        }
        seconds = round((last - first).total_seconds())
        records = rate * seconds
        invalid = round(records * invalid_rate)
        if invalid:
            quarantined = synthetic_quarantine(
                spark, pool, start=first, seconds=seconds, count=invalid
            )
            lake.write("quarantine", quarantined, batch_id)
        return {
            "batch_id": batch_id,
            "batch_start": first,
            "batch_end": last,
            "records_read": records + invalid,
            "bronze_rows": records + invalid,
            "silver_rows": records,
            "quarantine_rows": invalid,
            "duplicates": 0,
            "operator_minute_rows": rows["gold_operator_minute"],
            "postal_status_minute_rows": rows["gold_postal_status_minute"],
            "max_event_time": last - timedelta(seconds=1 / rate),
            "max_arrival_time": last,
            "source_lag_seconds": SOURCE_LAG_SECONDS,
            "duration_seconds": round(time.perf_counter() - tick, 3),
        }

    def commit(stats: dict) -> None:
        ops = spark.createDataFrame([stats], OPS_SCHEMA).drop("batch_id")
        lake.write("ops", ops, stats["batch_id"])

    # Two threads keep both cores busy while the other waits on a small Spark job.
    with ThreadPoolExecutor(max_workers=2) as writers:
        stats = list(writers.map(write_batch, enumerate(periods)))
        # _ops rows last: only now is every batch complete, so only now may one count.
        list(writers.map(commit, stats))
    for frame in (*gold.values(), pool[0]):
        frame.unpersist()
    summary = {
        "batches": len(periods),
        "events": sum(s["silver_rows"] for s in stats),
        "quarantined": sum(s["quarantine_rows"] for s in stats),
        "operator_minute_rows": sum(s["operator_minute_rows"] for s in stats),
        "postal_status_minute_rows": sum(s["postal_status_minute_rows"] for s in stats),
        "seconds": round(time.perf_counter() - started, 1),
    }
    log(
        f"done in {summary['seconds']:.0f} s: {summary['events']:,} events, "
        f"{summary['quarantined']:,} quarantined, gold {summary['operator_minute_rows']:,} "
        f"operator-minute and {summary['postal_status_minute_rows']:,} postal-status-minute rows"
    )
    return summary


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=Path(".telcopulse/bench"))
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--rate", type=int, default=200, help="events per second")
    parser.add_argument(
        "--recent-hours", type=int, default=24, help="hours at the end written an hour a batch"
    )
    parser.add_argument("--invalid-rate", type=float, default=0.002)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--force", action="store_true", help="wipe --home even without marker")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    lake = prepare_home(args.home.resolve(), args.force)
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    spark = build_spark("telcopulse-bench-history")
    try:
        summary = write_history(
            spark,
            lake,
            days=args.days,
            rate=args.rate,
            recent_hours=args.recent_hours,
            invalid_rate=args.invalid_rate,
            seed=args.seed,
            end=end,
            log=lambda message: print(message, file=sys.stderr, flush=True),
        )
    finally:
        spark.stop()
    described = {
        "state": "done",
        "days": args.days,
        "rate": args.rate,
        "recent_hours": args.recent_hours,
        "invalid_rate": args.invalid_rate,
        "end": f"{end:%Y-%m-%d %H:%M} UTC",
        **summary,
    }
    (args.home.resolve() / MARKER).write_text(json.dumps(described, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
