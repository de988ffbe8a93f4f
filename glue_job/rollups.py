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
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from glue_job.compaction import fold_rows
from glue_job.tables import GRAINS, ROLLUPS, TABLES, Table

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
