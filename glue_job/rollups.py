"""Hour and day rollups of gold (stream job): exact, and complete up to marks that only advance.

Each minute gold table has an hour and a day rollup (``glue_job.tables.ROLLUPS``) that
hold the very same mergeable sums, so a query may answer whole hours and days from them
and every ratio-of-sums KPI stays exact (``backend.ranges`` composes a range).

The job keeps one invariant, stated in every commit row (``_ops``): after batch N, the hour
rollups hold exactly the sums of the minute partials of every hour before
``rolled_hours_until`` (the hour mark), and the day rollups those of every day before
``rolled_days_until``, the day of the hour mark. Batch N, starting from the marks of the
batch before it, moves the hour mark to the hour of its newest event less ``GRACE``
(never back, never past the batch's start) and writes, under its own ``commit=N``:

- hour rows: the committed minute partials of every hour it seals (from the old mark to
  the new) plus its own minute partials of hours below the new mark (a late event into a
  sealed hour lands here, as a delta), folded per hour;
- day rows: the committed hour rows of every day it seals plus its own hour rows of days
  below the new day mark, folded per day.

Rows are sums, so sealed hours and later deltas add up; compaction merges them like any
gold partition. A retry clears and rewrites them with the rest of the batch, and a reader
sees them, and the marks, only from the batch's commit on. A batch that neither moves a
mark nor carries a late event writes no rollup at all: in a live stream, one batch an
hour seals the hour, and events later than ``GRACE`` cost a small delta each.

``RollupPlan`` is plain bookkeeping, free of Spark, so the rule can be unit-tested.

``_ops`` has hour and day rollups too (``tables.OPS_ROLLUPS``), for the Pipeline Health
page's long ranges. Its rows are keyed by batch start, which only moves forward, so no row
is ever late: batch N seals the hours of batch start from its commit row's
``ops_hours_until`` to its own start less ``GRACE`` (``OpsRollupPlan``), all of them
started, and so committed, before it; and the days below the new mark's day from those
hours. Each period is written once, by the batch that seals it, under that batch's commit.
A commit row without the mark (a new lake, or one written before these rollups) seals every
hour before the new mark, so an existing lake gets its history rolled up by its next batch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from glue_job.batch_values import batch_value
from glue_job.compaction import fold_rows
from glue_job.tables import (
    BATCH_ROLLUPS,
    GRAINS,
    OPS_ROLLUPS,
    QUARANTINE_ROLLUPS,
    ROLLUPS,
    TABLES,
    Table,
)

# An hour is sealed once events reach this far past its end: later events are deltas.
GRACE = timedelta(minutes=5)
_HOUR = timedelta(hours=1)


def floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def floor_day(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class Marks:
    """Rollups are complete for hours before ``hours_until`` and days before its day."""

    hours_until: datetime | None = None

    @property
    def days_until(self) -> datetime | None:
        return None if self.hours_until is None else floor_day(self.hours_until)

    def advanced(self, newest_event: datetime | None, started: datetime) -> Marks:
        """The marks after a batch whose newest event is ``newest_event``."""
        if newest_event is None:
            return self
        candidate = floor_hour(min(newest_event, started) - GRACE)
        if self.hours_until is not None and candidate <= self.hours_until:
            return self
        return Marks(candidate)


def hour_of(partition: str) -> datetime:
    """The hour a minute-gold partition (``event_date=D/event_hour=H``) holds."""
    values = dict(level.split("=", 1) for level in partition.split("/"))
    day = date.fromisoformat(values["event_date"])
    return datetime(day.year, day.month, day.day, int(values["event_hour"]))


def day_of(partition: str) -> datetime:
    """The day an hour-rollup partition (``event_date=D``) holds."""
    day = date.fromisoformat(partition.split("=", 1)[1])
    return datetime(day.year, day.month, day.day)


def _naive(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.replace(tzinfo=None)


@dataclass(frozen=True)
class RollupPlan:
    """What batch ``batch_id`` rolls up, decided before it writes anything.

    ``before`` and ``after`` are the marks around the batch. The reads name partitions of
    the minute tables (``event_date=D/event_hour=H``) and of the hour rollups
    (``event_date=D``), each with the first commit to read: the partition's latest
    compaction for a sealed period (every current row), the batch itself for a late one.
    """

    before: Marks
    after: Marks
    batch_id: int

    @property
    def moves(self) -> bool:
        return self.after != self.before

    def _bounds(self, grain: str) -> tuple[datetime | None, datetime | None]:
        if grain == "hour":
            return _naive(self.before.hours_until), _naive(self.after.hours_until)
        return _naive(self.before.days_until), _naive(self.after.days_until)

    def reads(
        self, grain: str, current: dict[str, int], written: Iterable[str]
    ) -> list[tuple[str, int, datetime]]:
        """(partition, first commit, period) the ``grain`` rollup folds from its source:
        ``current`` maps the source's partitions to their latest compaction (-1 for
        none), ``written`` names those this batch wrote."""
        old, new = self._bounds(grain)
        period_of = hour_of if grain == "hour" else day_of
        written = set(written)
        reads = []
        for partition in sorted(set(current) | written):
            period = period_of(partition)
            if new is not None and period < new and (old is None or period >= old):
                reads.append((partition, current.get(partition, -1), period))
            elif partition in written and old is not None and period < old:
                reads.append((partition, self.batch_id, period))
        return reads


def rollup_tables() -> list[str]:
    """Every rollup table's name, hours before days."""
    return [grains[g].name for g in GRAINS for grains in ROLLUPS.values()]


def rollup_rows(
    lake, table: Table, reads: list[tuple[str, int, datetime]], batch_id: int
) -> DataFrame | None:
    """The rows ``table`` (an hour or day rollup) gets from ``reads`` of its source, folded
    per period and key; None when there is nothing to read."""
    if not reads:
        return None
    grain = table.keys[0]
    source = _source_of(table)
    rows = lake.read_current(source.name, {p: first for p, first, _ in reads}, batch_id)
    if rows is None:
        return None
    if grain == "hour":
        rows = rows.withColumns(
            {
                "hour": F.date_trunc("hour", "minute"),
                "minute_min": F.col("minute"),
                "minute_max": F.col("minute"),
            }
        )
    else:
        rows = rows.withColumns(
            {"day": F.date_trunc("day", "hour"), "event_month": F.trunc("event_date", "month")}
        )
    return fold_rows(table, rows)


def _source_of(table: Table) -> Table:
    """What a rollup folds: the minute table for hours, the hour rollup for days."""
    for minute_name, grains in ROLLUPS.items():
        if grains["hour"] is table:
            return TABLES[minute_name]
        if grains["day"] is table:
            return grains["hour"]
    raise ValueError(f"{table.name} is not a rollup")


# --- _ops's rollups -----------------------------------------------------------------------


def _date_of(partition: str) -> date:
    """The date of a partition cut by day (``batch_date=D``, ``ingest_date=D``)."""
    return date.fromisoformat(partition.split("/", 1)[0].split("=", 1)[1])


@dataclass(frozen=True)
class OpsRollupPlan:
    """What batch ``batch_id`` rolls up of ``_ops``: the hours of batch start in
    [``before``, ``after``) and the days in [day of ``before``, day of ``after``); with
    ``before`` None, every hour and day below ``after``."""

    before: datetime | None
    after: datetime | None
    batch_id: int

    @classmethod
    def of(cls, before: datetime | None, started: datetime, batch_id: int) -> OpsRollupPlan:
        """The plan of a batch that started at ``started``: the mark moves to the hour of
        ``started`` less ``GRACE`` (a clock set back by less than that cannot put a later
        batch's start below it), never back."""
        after = floor_hour(started - GRACE)
        if before is not None and after <= before:
            after = before
        return cls(before, after, batch_id)

    @property
    def seals_hours(self) -> bool:
        return self.after is not None and self.after != self.before

    @property
    def seals_days(self) -> bool:
        if not self.seals_hours:
            return False
        return self.before is None or floor_day(self.before) < floor_day(self.after)

    def hour_reads(self, current: dict[str, int]) -> dict[str, int]:
        """The partitions of a table cut by the day of batch start (``_ops``, quarantine)
        that can hold the sealed hours, each with its first current commit (``current``:
        the table's partitions and their latest compaction, -1 for none)."""
        if not self.seals_hours:
            return {}
        last = (self.after - timedelta(microseconds=1)).date()
        first = None if self.before is None else self.before.date()
        return {
            p: since
            for p, since in current.items()
            if _date_of(p) <= last and (first is None or _date_of(p) >= first)
        }

    def day_reads(self, current: dict[str, int], written: Iterable[str]) -> dict[str, int]:
        """The hour-rollup partitions (``batch_date=D``) of the sealed days: those with
        files (``current``) and those this batch writes."""
        if not self.seals_days:
            return {}
        last = floor_day(self.after).date() - timedelta(days=1)
        first = None if self.before is None else floor_day(self.before).date()
        return {
            p: current.get(p, -1)
            for p in set(current) | set(written)
            if _date_of(p) <= last and (first is None or _date_of(p) >= first)
        }

    def reads(self, current) -> OpsReads | None:
        """What the batch reads and writes to seal its periods; None when it seals no hour
        that a batch may have started in. ``current(table)`` maps a table's partitions to
        their latest compaction (-1 for none)."""
        if not self.seals_hours:  # most batches: no listing of the plan's partitions
            return None
        sources = {name: self.hour_reads(current(name)) for name in BATCH_ROLLUPS}
        if not sources["ops"]:
            return None
        days: dict[str, dict[str, int]] = {}
        writes: set[tuple[str, str]] = set()
        for name, grains in BATCH_ROLLUPS.items():
            hour, day = grains["hour"], grains["day"]
            # Every day of the source's partitions of the sealed hours gets hour rows.
            (date_level,), (month_level,) = hour.partitions, day.partitions
            hours = {hour.partition_path({date_level: _date_of(p)}) for p in sources[name]}
            days[hour.name] = self.day_reads(current(hour.name), hours)
            writes |= {(hour.name, p) for p in hours}
            writes |= {
                (day.name, day.partition_path({month_level: _date_of(p).replace(day=1)}))
                for p in days[hour.name]
            }
        return OpsReads(sources["ops"], sources["quarantine"], days, frozenset(writes))


@dataclass(frozen=True)
class OpsReads:
    """What a batch reads to seal ``_ops``'s and quarantine's periods (each partition with
    the first commit to read), and the rollup partitions (table, partition) it writes."""

    ops: dict[str, int]  # _ops's partitions of the sealed hours
    quarantine: dict[str, int]  # quarantine's, for its rows of the same batches
    hours: dict[str, dict[str, int]]  # per hour rollup: its partitions of the sealed days
    writes: frozenset[tuple[str, str]]


def ops_hour_rows(ops: DataFrame, quarantine: DataFrame | None) -> DataFrame:
    """The hour rollup of commit rows ``ops`` (``_ops``'s columns, each row a committed
    batch of a whole hour) and the quarantine rows of the same batches: one row per hour of
    batch start. The input rate's interval is the time since the batch before in the same
    hour, as ``backend/sql`` computes it over raw commit rows."""
    hour = F.date_trunc("hour", "batch_start")
    previous = F.lag("batch_start").over(Window.partitionBy(hour).orderBy("batch_id"))
    # Whole milliseconds, as the SQL's date_diff('millisecond', ...) counts them.
    interval = F.unix_millis(F.col("batch_start")) - F.unix_millis(previous)
    accounted = F.col("silver_rows") + F.col("quarantine_rows") + F.col("duplicates")
    timed = interval.isNotNull()
    rows = ops.select(
        hour.alias("hour"),
        F.lit(1).cast("long").alias("batches"),
        F.col("records_read").alias("records"),
        "bronze_rows",
        "silver_rows",
        "quarantine_rows",
        "duplicates",
        F.when(F.col("bronze_rows") == accounted, 0).otherwise(1).alias("mismatched_batches"),
        F.lit(0).cast("long").alias("quarantine_table_rows"),
        F.col("batch_id").alias("batch_id_min"),
        F.col("batch_id").alias("batch_id_max"),
        F.col("batch_start").alias("batch_start_min"),
        F.col("batch_start").alias("batch_start_max"),
        F.col("duration_seconds").alias("busy_seconds"),
        F.col("duration_seconds").alias("duration_seconds_max"),
        F.col("source_lag_seconds").alias("source_lag_sum"),
        F.col("source_lag_seconds").isNotNull().cast("long").alias("source_lag_count"),
        F.col("source_lag_seconds").alias("source_lag_seconds_max"),
        F.when(timed, F.col("records_read")).otherwise(0).alias("timed_records"),
        (interval / 1000).alias("timed_seconds"),
    )
    if quarantine is not None:
        counted = quarantine.groupBy(F.date_trunc("hour", "ingest_time").alias("hour")).agg(
            F.count(F.lit(1)).alias("quarantine_table_rows")
        )

        # The other counts are 0 there, and every other column NULL, as a sum or extreme
        # over no batch is (an hour with one batch has no timed seconds, not 0).
        def blank(name: str, kind: str):
            count = kind == "bigint" and not name.endswith(("_min", "_max"))
            return F.lit(0 if count else None).cast(kind)

        blanks = {
            name: blank(name, kind)
            for name, kind in rows.dtypes
            if name not in ("hour", "quarantine_table_rows")
        }
        rows = rows.unionByName(counted.withColumns(blanks))
    return fold_rows(OPS_ROLLUPS["hour"], rows.withColumn("batch_date", F.to_date("hour")))


def ops_day_rows(hours: DataFrame) -> DataFrame:
    """The day rollup of hour-rollup rows of whole days."""
    days = hours.withColumns(
        {"day": F.date_trunc("day", "hour"), "batch_month": F.trunc("batch_date", "month")}
    )
    return fold_rows(OPS_ROLLUPS["day"], days)


def _starting_in(
    rows: DataFrame, column: str, since: datetime | None, until: datetime
) -> DataFrame:
    within = F.col(column) < batch_value(until)
    if since is not None:
        within &= F.col(column) >= batch_value(since)
    return rows.where(within)


def quarantine_hour_rows(quarantine: DataFrame) -> DataFrame:
    """The hour rollup of quarantine rows: records per reason code and hour of ingest."""
    rows = quarantine.select(
        F.date_trunc("hour", "ingest_time").alias("hour"),
        F.explode("reasons").alias("reason"),
        F.lit(1).cast("long").alias("records"),
    )
    return fold_rows(QUARANTINE_ROLLUPS["hour"], rows.withColumn("ingest_date", F.to_date("hour")))


def quarantine_day_rows(hours: DataFrame) -> DataFrame:
    """The day rollup of quarantine's hour-rollup rows of whole days."""
    days = hours.withColumns(
        {"day": F.date_trunc("day", "hour"), "ingest_month": F.trunc("ingest_date", "month")}
    )
    return fold_rows(QUARANTINE_ROLLUPS["day"], days)


def sealed_hours(lake, plan: OpsRollupPlan, reads: OpsReads) -> dict[str, DataFrame]:
    """The hour rows batch ``plan.batch_id`` writes, per hour rollup: its sealed hours'
    committed ``_ops`` rows, and the quarantine rows of the same batches (their count goes
    into ``_ops``'s rollup too); none for a source with no file there."""
    rows = lake.read_current("ops", reads.ops, plan.batch_id)
    if rows is None:
        return {}
    rows = _starting_in(rows, "batch_start", plan.before, plan.after)
    bad = None
    if reads.quarantine:
        bad = lake.read_current("quarantine", reads.quarantine, plan.batch_id)
    if bad is None:
        return {OPS_ROLLUPS["hour"].name: ops_hour_rows(rows, None)}
    bad = _starting_in(bad, "ingest_time", plan.before, plan.after)
    return {
        OPS_ROLLUPS["hour"].name: ops_hour_rows(rows, bad),
        QUARANTINE_ROLLUPS["hour"].name: quarantine_hour_rows(bad),
    }


_DAY_ROWS = {
    OPS_ROLLUPS["day"].name: ops_day_rows,
    QUARANTINE_ROLLUPS["day"].name: quarantine_day_rows,
}


def sealed_days(lake, plan: OpsRollupPlan, reads: OpsReads) -> dict[str, DataFrame]:
    """The day rows batch ``plan.batch_id`` writes, per day rollup, from the current hour
    rows of its sealed days (its own included)."""
    since = None if plan.before is None else floor_day(plan.before)
    out = {}
    for grains in BATCH_ROLLUPS.values():
        hour, day = grains["hour"].name, grains["day"].name
        partitions = reads.hours.get(hour)
        rows = lake.read_current(hour, partitions, plan.batch_id) if partitions else None
        if rows is not None:
            out[day] = _DAY_ROWS[day](_starting_in(rows, "hour", since, floor_day(plan.after)))
    return out
