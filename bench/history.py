"""Lake history for benchmarks (bench): days of synthetic traffic, laid out as the job leaves it.

Streaming a month through Kinesis would take a month, so this builds one day of synthetic
silver in Spark with the mix of ``backend.synthetic`` (operators, postal-code centroids,
signal and precision spread, status mix, outages), refines it with the job's own
``to_operator_minute`` / ``to_postal_status_minute`` / ``to_cell_minute`` and real
validation (quarantine), and
lays it out as the stream job and its compaction leave a lake after ``--days`` days at a
2-second trigger:

- every hour (gold) or date (quarantine, ``_ops``) before now: one compacted commit per
  table (gold merged to a row per key, quarantine and ``_ops`` rows kept); ``compactions``
  holds the newest compaction's rows, as the job leaves it once superseded files are gone;
- today: a compacted commit up to the last ``--open-batches`` batches (30, the job's
  ``DEFAULT_COMPACT_AFTER``: the worst case, just before the next compaction), then one
  commit per 2-second batch, refined and written by the job's own code;
- ``_ops``: one row per 2-second batch for the whole history (43,200 a day);
- gold's hour and day rollups (``glue_job.rollups``) of every hour before the open
  batches' hour and every day before today, folded from the compacted minutes with the
  job's ``fold_rows``; the open batches' ``_ops`` rows state those marks;
- ``_ops``'s and quarantine's hour and day rollups over the same hours and days, folded by
  the job's functions from the commit rows and quarantine.

Days before the template day repeat it, shifted by whole days (``repeated``): how many gold
rows a day holds depends on the traffic's shape, not on its date.

With ``--detail-days N`` the history is in *rollup form* before its last N days: those older
days hold only the hour and day rollups (gold's, ``_ops``'s and quarantine's: ``_ops``'s and
quarantine's repeat the first whole day of detail), no gold minutes, ``_ops`` commit rows or
quarantine rows. A range preset within the last N days reads only them, and "all" composes
whole days from the day rollups, so a page reads what it would in the same history kept in
full (issue 12's 365 days "in rollup form", labelled as such in bench/results.md).

Silver and bronze are not written (the dashboard never reads them). The history ends at the
current minute, or ``--end-in`` minutes later: a history that takes half an hour to write
then ends about when its pages are timed, and the "1 h" window holds a whole hour. Each
``--also`` size is a hard-linked copy with the older dates removed.

Every file goes through the job's writer (``glue_job.lake.ParquetLake``): table paths,
partition directories and ``commit=N`` directories are ``glue_job.tables``'; partitions and
their ends come from ``Table.partition_of``, rows from the job's transforms and schemas.
Usage, from the checkout's root:

    .venv/bin/python -m bench.history --home .telcopulse/bench --days 30 --also 7 --also 1
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, LongType, TimestampType

from backend.synthetic import (
    OUTAGE_SECONDS,
    OUTAGE_STATUS_MIX,
    SIGNAL_NOISE_DB,
    STATUS_MIX,
    SyntheticGenerator,
    load_profile,
)
from bench import utc_minute
from bench.lakes import MARKER, history_home, lake_of
from glue_job.compaction import fold_rows
from glue_job.contract import (
    BOUNDS,
    H3_RESOLUTIONS,
    STATUS_LABELS,
    canonical_operator,
    h3_cells,
    h3_column,
)
from glue_job.defaults import DEFAULT_COMPACT_AFTER, DEFAULT_TRIGGER_SECONDS
from glue_job.lake import ParquetLake
from glue_job.rollups import (
    floor_day,
    floor_hour,
    ops_day_rows,
    ops_hour_rows,
    quarantine_day_rows,
    quarantine_hour_rows,
)
from glue_job.schemas import QUARANTINE_SCHEMA, RAW_SCHEMA, table_schema
from glue_job.spark_conf import build_spark
from glue_job.tables import BATCH_ROLLUPS, COMPACTED, ROLLUPS, TABLES, Table
from glue_job.transforms import (
    to_cell_minute,
    to_operator_minute,
    to_postal_status_minute,
    to_quarantine,
    validate_records,
)

OUTAGE_EVERY_S = 180  # one postal-code outage starts about every 3 minutes (as synthetic.py)
PRECISION_QUANTILES = 256
QUARANTINE_POOL = 600
TRIGGER_SECONDS = int(DEFAULT_TRIGGER_SECONDS)  # one batch every 2 s, as the job runs
DAY_SECONDS = 86_400
BATCHES_A_DAY = DAY_SECONDS // TRIGGER_SECONDS


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
                *h3_cells(lat, lon).values(),
                mean,
                math.hypot(spread, SIGNAL_NOISE_DB),
            )
        )
    schema = (
        "device int, operator string, postal_code string, code_index int, "
        "centre_lat double, centre_lon double, "
        + "".join(f"{h3_column(r)} string, " for r in H3_RESOLUTIONS)
        + "signal_mean double, signal_spread double"
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
            *(h3_column(r) for r in H3_RESOLUTIONS),  # the centre's cells
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
    """An empty lake under ``home``; refuses to wipe a directory this module did not make."""
    lake = lake_of(home)
    if home.exists() and any(home.iterdir()):
        if not (home / MARKER).exists() and not force:
            raise SystemExit(
                f"{home} is not empty and was not made by bench.history: pick another --home"
            )
        shutil.rmtree(lake, ignore_errors=True)
    home.mkdir(parents=True, exist_ok=True)
    (home / MARKER).write_text(json.dumps({"state": "writing"}) + "\n")
    return lake


class Layout:
    """Batch numbers and commits of a history ``[start, end)`` at one batch per trigger."""

    def __init__(self, start: datetime, end: datetime, open_batches: int) -> None:
        self.start, self.end = start, end
        self.batches = round((end - start).total_seconds()) // TRIGGER_SECONDS
        self.open_first = self.batches - open_batches  # today's batches still uncompacted
        self.open_start = start + timedelta(seconds=self.open_first * TRIGGER_SECONDS)
        self.today = (end - timedelta(microseconds=1)).date()
        # Rollups are complete for every hour before the open batches' hour (write_rollups).
        self.hours_until = floor_hour(self.open_start)

    def batch_of(self, moment: Column) -> Column:
        return F.floor(
            (F.unix_timestamp(moment) - F.lit(int(self.start.timestamp()))) / TRIGGER_SECONDS
        ).cast(LongType())

    def commit_of(self, table: Table, batch: Column) -> Column:
        """Where the live job's compaction left a row of ``table``: rows of a partition (an
        hour of gold, a day of the rest) that ended before the open batches in the commit of
        the first batch after its end, the current partition's in ``open_first``, open
        batches in their own."""
        after_end = F.ceil(
            (F.unix_timestamp(partition_end(table)) - F.lit(int(self.start.timestamp())))
            / TRIGGER_SECONDS
        )
        compacted = F.least(after_end, F.lit(self.open_first))
        return F.when(batch >= self.open_first, batch).otherwise(compacted).cast(LongType())

    def first_commit(self, partition_end: datetime) -> int:
        """``commit_of`` for one partition's compacted rows."""
        seconds = (partition_end - self.start).total_seconds()
        return min(math.ceil(seconds / TRIGGER_SECONDS), self.open_first)

    def partitions(self, table: Table) -> list[tuple[str, datetime]]:
        """(``Table.partition_path``, end) of each partition of ``table`` the history covers:
        where ``Table.partition_of`` puts each of its hours, ending when its last hour does."""
        ends: dict[str, datetime] = {}
        hour = self.start.replace(minute=0, second=0, microsecond=0)
        while hour < self.end:
            ends[table.partition_of(hour)] = hour + timedelta(hours=1)
            hour += timedelta(hours=1)
        return list(ends.items())


def write_rollups(
    lake: ParquetLake, layout: Layout, minute: Table, template: DataFrame, days: int
) -> dict[str, int]:
    """The hour and day rollups of ``days`` of ``minute``'s history, each day a copy of the
    ``template`` day's minutes, as the job leaves them (``glue_job.rollups``): every hour
    before ``layout.hours_until`` and every day before its day, folded with the job's
    ``fold_rows``. The template folds to hours once and is repeated (``repeated``) and
    folded again, which merges the hour each copy shares with the next. Each row is in the
    commit that compacted its partition (``Layout.first_commit``), so the compaction rows
    written below keep it current. Returns the rows written per grain."""
    grains = ROLLUPS[minute.name]
    hours = grains["hour"]
    one_day = fold_rows(
        hours,
        template.withColumns(
            {
                "hour": F.date_trunc("hour", "minute"),
                "minute_min": F.col("minute"),
                "minute_max": F.col("minute"),
            }
        ),
    )
    every_day = repeated(one_day, range(days)).where(F.col("hour") < F.lit(layout.hours_until))
    hour_rows = fold_rows(hours, every_day).persist(StorageLevel.MEMORY_AND_DISK)
    days_table = grains["day"]
    day_rows = fold_rows(
        days_table,
        hour_rows.where(F.col("hour") < F.lit(floor_day(layout.hours_until))).withColumns(
            {"day": F.date_trunc("day", "hour"), "event_month": F.trunc("event_date", "month")}
        ),
    )
    written = {}
    for grain, table, rows in (("hour", hours, hour_rows), ("day", days_table, day_rows)):
        # Every period is below the hour mark, so before the open batches: its partition's.
        commit = layout.commit_of(table, layout.batch_of(F.col(grain)))
        written[grain] = lake.write_committed(table.name, rows.withColumn("commit_id", commit))
    hour_rows.unpersist()
    return written


def write_ops_rollups(
    lake: ParquetLake,
    layout: Layout,
    ops: DataFrame,
    quarantined: DataFrame,
    detail_start: datetime,
) -> dict[str, int]:
    """``_ops``'s and quarantine's hour and day rollups of the history, as the job leaves
    them (``glue_job.rollups``): every hour of batch start before ``layout.hours_until``
    (the open batches' ``ops_hours_until``) and every day before its day, folded by the
    job's own functions, each row in its partition's compaction commit. ``ops`` and
    ``quarantined`` hold the batches from ``detail_start`` (a whole hour) on; the hours
    before it, back to the history's first whole hour, repeat the rollup of its first day
    (``repeated``: the rollup form of a long history). Returns the rows written per rollup
    table."""
    until = F.lit(layout.hours_until)
    first_hour = floor_hour(layout.start)
    first_hour += timedelta(hours=1) if first_hour < layout.start else timedelta(0)
    copies = math.ceil((detail_start - first_hour) / timedelta(days=1))
    bad = quarantined.where(F.col("ingest_time") < until)
    folds = {
        "ops": (ops_hour_rows(ops.where(F.col("batch_start") < until), bad), ops_day_rows),
        "quarantine": (quarantine_hour_rows(bad), quarantine_day_rows),
    }
    written = {}
    for source, (detail, fold_days) in folds.items():
        folded = detail
        if copies > 0:
            hour = F.col("hour")
            first_day = detail.where(
                (hour >= F.lit(detail_start)) & (hour < F.lit(detail_start + timedelta(days=1)))
            )
            older = repeated(first_day, range(1, copies + 1)).where(hour >= F.lit(first_hour))
            folded = detail.unionByName(older)
        hour_rows = folded.persist(StorageLevel.MEMORY_AND_DISK)
        whole_days = hour_rows.where(F.col("hour") < F.lit(floor_day(layout.hours_until)))
        for grain, rows in (("hour", hour_rows), ("day", fold_days(whole_days))):
            table = BATCH_ROLLUPS[source][grain]
            commit = layout.commit_of(table, layout.batch_of(F.col(grain)))
            written[table.name] = lake.write_committed(
                table.name, rows.withColumn("commit_id", commit)
            )
        hour_rows.unpersist()
    return written


def partition_end(table: Table) -> Column:
    """When a row's partition of ``table`` ends, from its partition columns: the end of its
    hour for a table cut by the hour, of its month for one cut by the month (``event_month``,
    the day rollups), of its day otherwise (as ``Table.partition_of`` cuts)."""
    levels = dict(table.partition_types)
    months = [name for name in levels if name.endswith("_month")]
    if months:
        return F.add_months(F.col(months[0]), 1).cast("timestamp")
    day = F.col(next(name for name, kind in levels.items() if kind == "date"))
    hours = [name for name, kind in levels.items() if kind == "int"]
    if not hours:
        return F.date_add(day, 1).cast("timestamp")
    start = F.unix_timestamp(day.cast("timestamp"))
    return F.timestamp_seconds(start + (F.col(hours[0]) + 1) * 3600)


def repeated(frame: DataFrame, days_back: range) -> DataFrame:
    """``frame`` once for each ``k`` in ``days_back``, ``k`` whole days earlier: every
    timestamp and date column moves back k days and every batch id (``batch_id*``) k days
    of batches; keys, hours of the day and figures stay (whole days, in UTC)."""
    k = F.col("days_back")
    moved = {}
    for field in frame.schema.fields:
        name = F.col(field.name)
        if isinstance(field.dataType, TimestampType):
            moved[field.name] = name - F.expr("INTERVAL 1 DAY") * k
        elif isinstance(field.dataType, DateType):
            moved[field.name] = F.date_sub(name, k.cast("int"))
        elif field.name.startswith("batch_id"):
            moved[field.name] = name - k * BATCHES_A_DAY
    copies = frame.sparkSession.range(days_back.start, days_back.stop).toDF("days_back")
    return frame.crossJoin(F.broadcast(copies)).withColumns(moved).drop("days_back")


def conform(table: str, frame: DataFrame) -> DataFrame:
    """``frame`` as the job hands ``table`` to the writer (``table_schema``), plus the batch
    and commit ids it carries: its columns in order, a typed null for each the history has
    no value for (as the job's ``_ops`` row leaves a figure it did not take)."""
    have = set(frame.columns)
    columns = [
        F.col(f.name) if f.name in have else F.lit(None).cast(f.dataType).alias(f.name)
        for f in table_schema(TABLES[table]).fields
    ]
    return frame.select(*columns, *(c for c in ("batch_id", "commit_id") if c in have))


def checked_detail_days(days: int, detail_days: int | None) -> int:
    """How many of ``days`` are held in full: all of them by default, else from 2 (the
    rollup form repeats a whole day of ``_ops`` detail) up to ``days``."""
    if detail_days is None:
        return days
    if not 2 <= detail_days <= days:
        raise ValueError(f"--detail-days must be from 2 to --days ({days}): {detail_days}")
    return detail_days


def write_history(
    spark: SparkSession,
    lake_root: Path,
    *,
    days: int,
    detail_days: int | None = None,
    rate: int,
    open_batches: int,
    invalid_rate: float,
    seed: int,
    end: datetime,
    log=print,
) -> dict:
    """Write ``days`` of history ending at ``end``, laid out as the module docstring says:
    the last ``detail_days`` (all of them by default) in full, the older ones in rollup
    form."""
    started = time.perf_counter()
    lake = ParquetLake(spark, str(lake_root))
    layout = Layout(end - timedelta(days=days), end, open_batches)
    detail_days = checked_detail_days(days, detail_days)
    # Where _ops and quarantine rows start: the history's start, or in rollup form the whole
    # hour the detail days start in (their rollups' older copies repeat whole hours).
    detail_start = (
        layout.start if detail_days == days else floor_hour(end - timedelta(days=detail_days))
    )
    log(
        f"writing {days} days at {rate} events/s ending {end:%Y-%m-%d %H:%M} UTC to {lake_root}: "
        f"{layout.batches:,} batches of {TRIGGER_SECONDS} s, the last {open_batches} uncompacted"
    )
    template_start = end - timedelta(days=1)
    silver = synthetic_silver(
        spark,
        device_table(spark),
        precision_quantiles(),
        start=template_start,
        seconds=DAY_SECONDS,
        rate=rate,
        seed=seed,
    ).persist(StorageLevel.MEMORY_AND_DISK)
    summary: dict = {
        "batches": layout.batches,
        "events": rate * DAY_SECONDS * days,
        "detail_days": detail_days,
    }

    # The open batches first, refined and written batch by batch as the job does: the first
    # of them also holds today's compacted rows, which are appended to it below.
    tick = time.perf_counter()
    open_start = F.lit(layout.open_start)
    recent = silver.where(F.col("event_time") >= open_start).withColumn(
        "batch", layout.batch_of("event_time")
    )
    recent = recent.persist(StorageLevel.MEMORY_AND_DISK)

    def write_open(table: str, transform) -> int:
        # One thread per table: two Spark jobs writing one table at once would share (and
        # clean up) its _temporary directory.
        return sum(
            lake.write(table, transform(recent.where(F.col("batch") == batch).drop("batch")), batch)
            for batch in range(layout.open_first, layout.batches)
        )

    refiners = {
        "gold_operator_minute": to_operator_minute,
        "gold_postal_status_minute": to_postal_status_minute,
        "gold_cell_minute": to_cell_minute,
    }
    with ThreadPoolExecutor(max_workers=2) as writers:
        open_rows = sum(writers.map(write_open, refiners, refiners.values()))
    recent.unpersist()
    summary["gold_open_rows"] = open_rows
    log(
        f"  {open_batches} open batches: {open_rows:,} gold rows "
        f"in {time.perf_counter() - tick:.0f} s"
    )

    # Compacted gold: the template day refined once, then repeated a day earlier each time;
    # today's copy stops where the open batches start.
    for table, transform in refiners.items():
        tick = time.perf_counter()
        template = transform(silver).persist(StorageLevel.MEMORY_AND_DISK)
        history = repeated(template, range(detail_days)).where(
            (F.col("minute") >= F.lit(end - timedelta(days=detail_days)))
            & (F.col("minute") < open_start)
        )
        rows = lake.write_committed(
            table,
            history.withColumn(
                "commit_id", layout.commit_of(TABLES[table], layout.batch_of("minute"))
            ),
        )
        summary[f"{table}_compacted_rows"] = rows
        log(f"  {table}: {rows:,} compacted rows in {time.perf_counter() - tick:.0f} s")
        tick = time.perf_counter()
        for grain, rolled in write_rollups(lake, layout, TABLES[table], template, days).items():
            summary[f"{ROLLUPS[table][grain].name}_rows"] = rolled
            log(f"  {ROLLUPS[table][grain].name}: {rolled:,} rows")
        log(f"  rolled up in {time.perf_counter() - tick:.0f} s")
        template.unpersist()
    silver.unpersist()

    # Quarantine: every bad record of the history, through the job's validation, in its batch.
    tick = time.perf_counter()
    detail_seconds = round((end - detail_start).total_seconds())
    invalid = round(rate * detail_seconds * invalid_rate)
    pool = quarantine_pool(spark, seed)
    quarantined = synthetic_quarantine(
        spark, pool, start=detail_start, seconds=detail_seconds, count=invalid
    ).withColumn("batch_id", layout.batch_of("ingest_time"))
    quarantined = quarantined.withColumn(
        "commit_id", layout.commit_of(TABLES["quarantine"], F.col("batch_id"))
    )
    quarantined = conform("quarantine", quarantined).persist(StorageLevel.MEMORY_AND_DISK)
    summary["quarantined"] = lake.write_committed("quarantine", quarantined)
    bad_per_batch = quarantined.groupBy("batch_id").agg(F.count(F.lit(1)).alias("bad"))
    pool[0].unpersist()
    log(f"  quarantine: {summary['quarantined']:,} rows in {time.perf_counter() - tick:.0f} s")

    # _ops: a row per batch. Counts are the batch's share of the history; lag and duration
    # vary as they do live (0.2-2.5 s behind the stream, 0.6-1.6 s to process).
    tick = time.perf_counter()
    per_batch = rate * TRIGGER_SECONDS
    batch = F.col("id")
    bad = F.coalesce(F.col("bad"), F.lit(0)).cast(LongType())
    batch_start = F.timestamp_seconds(F.lit(layout.start.timestamp()) + batch * TRIGGER_SECONDS)
    duration = F.round(0.6 + F.rand(seed + 7), 3)
    first_batch = round((detail_start - layout.start).total_seconds()) // TRIGGER_SECONDS
    batches = spark.range(first_batch, layout.batches).join(
        bad_per_batch.withColumnRenamed("batch_id", "id"), "id", "left"
    )
    ops = batches.select(
        batch.alias("batch_id"),
        batch_start.alias("batch_start"),
        (batch_start + F.expr("INTERVAL 1 SECOND") * duration).alias("batch_end"),
        (F.lit(per_batch) + bad).alias("records_read"),
        (F.lit(per_batch) + bad).alias("bronze_rows"),
        F.lit(per_batch).cast(LongType()).alias("silver_rows"),
        bad.alias("quarantine_rows"),
        F.lit(0).cast(LongType()).alias("duplicates"),
        F.lit(None).cast(LongType()).alias("operator_minute_rows"),
        F.lit(None).cast(LongType()).alias("postal_status_minute_rows"),
        F.lit(None).cast(LongType()).alias("cell_minute_rows"),
        # The rollups' marks (write_rollups), as the open batches' commit rows state them.
        F.when(batch >= layout.open_first, F.lit(layout.hours_until)).alias("rolled_hours_until"),
        F.when(batch >= layout.open_first, F.lit(floor_day(layout.hours_until))).alias(
            "rolled_days_until"
        ),
        F.when(batch >= layout.open_first, F.lit(layout.hours_until)).alias("ops_hours_until"),
        (batch_start - F.expr("INTERVAL 1 SECOND")).alias("max_event_time"),
        batch_start.alias("max_arrival_time"),
        F.round(0.2 + 2.3 * F.rand(seed + 8), 3).alias("source_lag_seconds"),
        duration.alias("duration_seconds"),
        F.to_date(batch_start).alias("batch_date"),
    )
    # Each commit row's running figures (glue_job.batch.SoFar), as the job adds them up.
    so_far = Window.orderBy("batch_id").rowsBetween(Window.unboundedPreceding, Window.currentRow)
    busy = F.col("records_read") > 0
    silver = busy & (F.col("silver_rows") > 0)
    ops = ops.withColumns(
        {
            "batches_so_far": F.sum(busy.cast(LongType())).over(so_far),
            "last_commit_so_far": F.max(F.when(busy, F.col("batch_end"))).over(so_far),
            "newest_event_so_far": F.max(F.when(busy, F.col("max_event_time"))).over(so_far),
            "newest_arrival_so_far": F.max(F.when(busy, F.col("max_arrival_time"))).over(so_far),
            "silver_commit_so_far": F.max(F.when(silver, F.col("batch_end"))).over(so_far),
            "silver_arrival_so_far": F.max(F.when(silver, F.col("max_arrival_time"))).over(so_far),
        }
    )
    ops = ops.withColumn("commit_id", layout.commit_of(TABLES["ops"], F.col("batch_id")))
    ops = ops.persist(StorageLevel.MEMORY_AND_DISK)
    lake.write_committed("ops", conform("ops", ops))
    log(f"  _ops: {layout.batches - first_batch:,} rows in {time.perf_counter() - tick:.0f} s")
    tick = time.perf_counter()
    for table, rolled in write_ops_rollups(lake, layout, ops, quarantined, detail_start).items():
        summary[f"{table}_rows"] = rolled
        log(f"  {table}: {rolled:,} rows")
    log(f"  rolled up in {time.perf_counter() - tick:.0f} s")
    ops.unpersist()
    quarantined.unpersist()

    # The job keeps a compaction's row only while the files it superseded are on disk, and
    # always its newest: with no superseded file in this layout, the newest compaction's rows,
    # written as the job writes them (one row per partition, in that compaction's commit).
    folded = {
        (table.name, partition): layout.first_commit(end)
        for table in COMPACTED
        for partition, end in layout.partitions(table)
    }
    newest = max(folded.values())
    records = [
        # table_name, partition_path, rows_before, rows_after, first_commit_id
        (name, partition, None, None, -1)
        for (name, partition), commit in folded.items()
        if commit == newest
    ]
    compactions = spark.createDataFrame(records, table_schema(TABLES["compactions"]))
    lake.write("compactions", compactions, newest)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    log(f"done in {summary['seconds']:.0f} s")
    return summary


def derive(source: Path, target: Path, days: int, end: datetime) -> None:
    """A smaller history: a hard-linked copy of ``source`` without the dates before
    ``end - days``."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, copy_function=os.link)
    first = (end - timedelta(days=days)).date()
    for table in COMPACTED:
        (level, kind), *_ = table.partition_types
        assert kind == "date", f"{table.name}: the first partition level is its date"
        for folder in (lake_of(target) / table.path).glob(f"{level}=*"):
            if level.endswith("_month"):
                _drop_days_before(folder, table.keys[0], first)
            elif datetime.fromisoformat(folder.name.split("=", 1)[1]).date() < first:
                shutil.rmtree(folder)


def _drop_days_before(folder: Path, column: str, first) -> None:
    """A month partition of day rollups keeps its days from ``first`` on: each file is
    rewritten without the older rows (a new file, not through the hard link)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    for path in folder.rglob("*.parquet"):
        rows = pq.read_table(path)
        kept = rows.filter(pc.greater_equal(pc.cast(rows[column], "date32"), first))
        path.unlink()
        if kept.num_rows:
            pq.write_table(kept, path)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=Path(".telcopulse/bench"))
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument(
        "--also", type=int, action="append", default=[], help="smaller histories (days) too"
    )
    parser.add_argument(
        "--detail-days",
        type=int,
        default=None,
        help="keep only the last N days in full and the older ones as rollups (N >= 2)",
    )
    parser.add_argument(
        "--end-in",
        type=float,
        default=0.0,
        metavar="MINUTES",
        help="end the history this many minutes from now (about as long as writing it takes), "
        "so it ends near the time its pages are timed",
    )
    parser.add_argument("--rate", type=int, default=200, help="events per second")
    parser.add_argument("--open-batches", type=int, default=DEFAULT_COMPACT_AFTER)
    parser.add_argument("--invalid-rate", type=float, default=0.002)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--force", action="store_true", help="wipe --home even without marker")
    args = parser.parse_args(argv)
    if args.end_in < 0:
        parser.error(f"--end-in must be 0 or more minutes: {args.end_in}")
    try:
        checked_detail_days(args.days, args.detail_days)
    except ValueError as exc:
        parser.error(str(exc))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    home = args.home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    largest = history_home(home, args.days)
    lake = prepare_home(largest, args.force)
    end = (datetime.now(UTC) + timedelta(minutes=args.end_in)).replace(second=0, microsecond=0)
    # History is one big batch job, not a stream: it gets a heap to match.
    spark = build_spark("telcopulse-bench-history", **{"spark.driver.memory": "6g"})
    try:
        summary = write_history(
            spark,
            lake,
            days=args.days,
            detail_days=args.detail_days,
            rate=args.rate,
            open_batches=args.open_batches,
            invalid_rate=args.invalid_rate,
            seed=args.seed,
            end=end,
            log=lambda message: print(message, file=sys.stderr, flush=True),
        )
    finally:
        spark.stop()
    described = {
        "state": "done",
        "rate": args.rate,
        "open_batches": args.open_batches,
        "invalid_rate": args.invalid_rate,
        "end": utc_minute(end),
        **summary,
    }
    for days in sorted({args.days, *args.also}, reverse=True):
        target = history_home(home, days)
        if days != args.days:
            derive(largest, target, days, end)
        # A derived copy's marker is a hard link to the source's: replace it, never write
        # through it.
        (target / MARKER).unlink(missing_ok=True)
        (target / MARKER).write_text(json.dumps({**described, "days": days}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
