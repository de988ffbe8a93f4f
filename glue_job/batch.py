"""Per-batch writer (bronze, silver, quarantine, gold, _ops): ``process_batch(df, batch_id)``.

Exactly once, visibly: every output of batch N lives under ``commit=N`` directories
that a retry clears and rewrites, and the ``_ops`` row of batch N is written last.
Readers only count commits up to the newest committed batch. What a retry clears is
decided from the lake: the attempt journal names every partition an attempt wrote
(``glue_job.lake``), whether it failed in this process or in one that died. A batch
that is already committed (the job died after ``_ops`` but before Spark's own commit
log, or Glue retried a batch that failed after its commit row) is skipped on replay.
When partitions are due, the batch also compacts them (``glue_job.compaction``) before
it commits, so the folded files become current with the same commit.
"""

from __future__ import annotations

import itertools
import sys
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from glue_job.compaction import CompactionPlan, fold_rows
from glue_job.dedup import EVENT_KEY, KEY_DTYPE, ROW_ID, SeenEvents, choose_silver
from glue_job.defaults import (
    DEFAULT_COMPACT_AFTER,
    DEFAULT_DEDUP_HORIZON_HOURS,
    DEFAULT_GRACE_SECONDS,
)
from glue_job.lake import ParquetLake, Target
from glue_job.rollups import (
    Marks,
    OpsReads,
    OpsRollupPlan,
    RollupPlan,
    rollup_rows,
    sealed_days,
    sealed_hours,
)
from glue_job.schemas import OPS_SCHEMA, table_schema
from glue_job.tables import COMPACTED, COMPACTIONS, GOLD_MINUTE, ROLLUPS, TABLES
from glue_job.transforms import (
    event_key,
    to_bronze,
    to_cell_minute,
    to_operator_minute,
    to_postal_status_minute,
    to_quarantine,
    to_silver,
    valid_events,
    validate_records,
)


def load_seen_events(
    lake: ParquetLake, committed: int | None, horizon: timedelta, now: datetime
) -> SeenEvents:
    """Rebuild the dedup index from committed silver within the horizon.

    Reads only the silver partitions that batches of the horizon wrote: their ``_ops``
    rows (the horizon's days of ``_ops``) name them, so start-up costs the same after a
    day of history as after a year.
    """
    index = SeenEvents(horizon=horizon)
    if committed is None:
        return index
    since = now - horizon
    days = (since.date() + timedelta(days=n) for n in range((now.date() - since.date()).days + 1))
    ops_days = (TABLES["ops"].partition_path({"batch_date": d}) for d in days)
    ops = lake.read_partitions("ops", ops_days)
    if ops is None:
        return index
    recent = (
        ops.where((F.col("batch_id") <= committed) & (F.col("batch_start") >= since))
        .where(F.col("silver_rows") > 0)
        .select(F.explode_outer("silver_dates").alias("event_date"))
        .distinct()
        .toPandas()["event_date"]
    )
    if recent.isna().any():
        silver = lake.read("silver")  # batches from before _ops named their dates
    else:
        silver = lake.read_partitions(
            "silver", (TABLES["silver"].partition_path({"event_date": d}) for d in recent)
        )
    if silver is None:
        return index
    keys = (
        silver.where((F.col("commit_id") <= committed) & (F.col("ingest_time") >= since))
        .select(
            F.xxhash64("event_id").alias(EVENT_KEY),
            F.floor(F.unix_timestamp("ingest_time") / 3600).cast("long").alias("hour"),
        )
        .toPandas()
    )
    for hour, group in keys.groupby("hour"):
        index.buckets[int(hour)] = np.unique(group[EVENT_KEY].to_numpy(dtype=KEY_DTYPE))
    return index


def _utc(moment: datetime | None) -> datetime | None:
    # The session runs in UTC (glue_job.spark_conf), so Spark hands back naive UTC times.
    return None if moment is None else moment.replace(tzinfo=UTC)


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


@dataclass(frozen=True)
class SoFar:
    """The running figures of a commit row (``tables.OPS``): over every batch up to it
    that read records, how many there were, when the newest committed, and the newest
    event and arrival times they committed; and over those that put rows in silver (and
    so in gold, which is refined from every silver row), when the newest committed and
    the newest arrival it committed. Each batch adds its own to its predecessor's.

    Bronze holds every record a batch read, and a batch's newest event time is that of its
    newest silver row, so the one row answers each layer's freshness (Home's freshness line
    and Pipeline Health's layers: backend/sql/freshness.sql)."""

    batches: int = 0
    last_commit: datetime | None = None
    newest_event: datetime | None = None
    newest_arrival: datetime | None = None
    silver_commit: datetime | None = None
    silver_arrival: datetime | None = None

    COLUMNS = (
        "batches_so_far",
        "last_commit_so_far",
        "newest_event_so_far",
        "newest_arrival_so_far",
        "silver_commit_so_far",
        "silver_arrival_so_far",
    )
    # The columns commit rows gained on 2026-12-06: a row without them reads them as null.
    SILVER_COLUMNS = COLUMNS[-2:]

    def including(self, stats: dict) -> SoFar:
        """These figures with the batch whose ``_ops`` stats are ``stats`` added."""
        if not stats["records_read"]:
            return self
        silver = bool(stats["silver_rows"])
        return SoFar(
            self.batches + 1,
            _later(self.last_commit, stats["batch_end"]),
            _later(self.newest_event, stats["max_event_time"]),
            _later(self.newest_arrival, stats["max_arrival_time"]),
            _later(self.silver_commit, stats["batch_end"] if silver else None),
            _later(self.silver_arrival, stats["max_arrival_time"] if silver else None),
        )

    def row(self) -> dict:
        values = (
            self.batches,
            self.last_commit,
            self.newest_event,
            self.newest_arrival,
            self.silver_commit,
            self.silver_arrival,
        )
        return dict(zip(self.COLUMNS, values, strict=True))

    @classmethod
    def scanned(cls, lake: ParquetLake, committed: int) -> SoFar:
        """The figures as of batch ``committed``, from every ``_ops`` row up to it: for a lake
        whose commit rows are older than these columns (once; its next commit row has them)."""
        ops = lake.read("ops")
        busy = ops.where((F.col("batch_id") <= committed) & (F.col("records_read") > 0))
        silver = F.col("silver_rows") > 0
        found = busy.select(
            F.countDistinct("batch_id"),
            F.max("batch_end"),
            F.max("max_event_time"),
            F.max("max_arrival_time"),
            F.max(F.when(silver, F.col("batch_end"))),
            F.max(F.when(silver, F.col("max_arrival_time"))),
        ).collect()[0]
        return cls(int(found[0]), *(_utc(v) for v in found[1:]))


def load_commit_state(
    lake: ParquetLake, committed: int | None
) -> tuple[Marks, datetime | None, SoFar]:
    """The rollup marks (gold's, and ``_ops``'s hour mark) and running figures of the
    newest commit row (none before it)."""
    rows = None if committed is None else lake.read_commit("ops", committed)
    if rows is None:
        return Marks(), None, SoFar()
    found = (
        rows.where(F.col("batch_id") == committed)
        .select("rolled_hours_until", "ops_hours_until", *SoFar.COLUMNS)
        .limit(1)
        .collect()
    )
    if not found:
        return Marks(), None, SoFar()
    hours_until, ops_hours_until, batches, *moments = found[0]
    marks = Marks(_utc(hours_until))
    ops_mark = _utc(ops_hours_until)
    so_far = None if batches is None else SoFar(int(batches), *(_utc(m) for m in moments))
    if so_far is None or (so_far.batches and so_far.silver_commit is None):
        # Written before commit rows carried their running figures, or their silver ones
        # (or no batch has put a row in silver yet: the scan then finds none either).
        return marks, ops_mark, SoFar.scanned(lake, committed)
    return marks, ops_mark, so_far


@dataclass
class Verdicts:
    """What one small collect of the validated batch decides before anything is written."""

    stats: dict  # the _ops row so far
    arrivals: pd.DataFrame  # the valid records (key, times, row id)
    keep: np.ndarray  # which of them go to silver
    targets: set[Target]  # every partition the batch writes, compaction's included
    compact: list[Target]  # the partitions it folds
    rollups: RollupPlan  # the marks it moves to
    rollup_reads: dict[str, list]  # per rollup table: what it folds (RollupPlan.reads)
    ops_rollups: OpsRollupPlan  # _ops's hours and days it seals
    ops_reads: OpsReads | None  # what it reads and writes to seal them


class BatchProcessor:
    """The ``foreachBatch`` function: refine one micro-batch into every layer.

    Every attempt of a batch that has not committed starts from a clean slate decided from
    the lake: the attempt journal of an earlier attempt (``ParquetLake.record_attempt``)
    names what to delete, whether that attempt ran in this process (Glue's ``forEachBatch``
    retries a failed batch in place, with the same id) or in one that died. After any
    failure the processor also rereads its state from the lake, as a new process would.
    """

    def __init__(
        self,
        spark: SparkSession,
        lake: ParquetLake,
        *,
        dedup_horizon: timedelta = timedelta(hours=DEFAULT_DEDUP_HORIZON_HOURS),
        compact_after: int = DEFAULT_COMPACT_AFTER,
        compaction_grace_seconds: float = DEFAULT_GRACE_SECONDS,
        clock=lambda: datetime.now(UTC),
        log=None,
    ) -> None:
        self.spark = spark
        self.lake = lake
        self.parallelism = spark.sparkContext.defaultParallelism
        self.clock = clock
        self.log = log or (lambda message: print(message, file=sys.stderr, flush=True))
        self.dedup_horizon = dedup_horizon
        self.compact_after = compact_after
        self.compaction_grace_seconds = compaction_grace_seconds
        # A lake written before attempt journals may hold leftovers no journal names.
        self._swept = lake.is_journaled()
        self._stale = False
        self.failed_batch: int | None = None  # the batch whose attempt raised, if one did
        self._load_state()

    def _load_state(self) -> None:
        """All the processor knows, read from the lake: what a new process would know."""
        self.last_committed: int | None = self.lake.last_committed()
        self.marks, self.ops_mark, self.so_far = load_commit_state(self.lake, self.last_committed)
        # The wall clock, not ``self.clock``: the horizon is about when records arrived.
        self.seen = load_seen_events(
            self.lake, self.last_committed, self.dedup_horizon, datetime.now(UTC)
        )
        self.plan = CompactionPlan(
            compact_after=self.compact_after, grace_seconds=self.compaction_grace_seconds
        )
        # compaction commit -> the partitions it folded; and per partition, the newest
        # compaction whose superseded files are deleted (its row, and older ones, then
        # describe no file any more).
        self._compactions: dict[int, set[Target]] = defaultdict(set)
        self._collected: dict[Target, int] = {}
        self._restore_compaction_state()

    def __call__(self, raw: DataFrame, batch_id: int) -> None:
        self.process_batch(raw, batch_id)

    def process_batch(self, raw: DataFrame, batch_id: int) -> dict | None:
        if self._settle(batch_id):
            self.log(f"batch {batch_id} is already committed; skipping its replay")
            return None
        try:
            return self._process(raw, batch_id)
        except BaseException:
            self._stale = True  # the next attempt rereads the lake before it starts
            self.failed_batch = batch_id  # for the line the job stops with
            raise

    def _settle(self, batch_id: int) -> bool:
        """Give batch ``batch_id`` a clean slate; True when the lake says it committed.

        Costs one listing of ``_attempts`` (empty unless an attempt failed) per batch.
        """
        replayed = False
        for commit in self.lake.attempts():
            targets = self.lake.attempt_targets(commit)
            if targets is None:
                committed = (self.lake.last_committed() or -1) >= commit
            else:
                ops = (p for table, p in targets if table == "ops")
                committed = any(self.lake.holds_commit(commit, p) for p in ops)
            if committed:  # it failed after its commit row: nothing to undo
                replayed |= commit == batch_id
            else:
                self.lake.clear_attempt(commit, targets)
                self.log(f"batch {commit}: removed what an unfinished attempt wrote")
            self.lake.forget_attempt(commit)
            self._stale = True
        if not self._swept:
            self.lake.sweep_commit(batch_id)
            self._swept = True
        if self._stale:
            self._load_state()
            self._stale = False
        return replayed or (self.last_committed is not None and batch_id <= self.last_committed)

    def _process(self, raw: DataFrame, batch_id: int) -> dict:
        started = self.clock()
        tick = time.perf_counter()
        self._collect_garbage()
        self._laps = [("", time.perf_counter())]
        # Validation runs in the source's one partition: a shuffle to spread it over both
        # cores costs more than it saves (measured), and leaves the other core to bronze.
        validated = validate_records(raw, started).persist()
        try:
            verdicts = self._decide(validated, batch_id, started)
            self._lap("validate")
            self.lake.record_attempt(batch_id, verdicts.targets)
            self._write_layers(raw, validated, verdicts, batch_id, started)
        finally:
            validated.unpersist()
        stats = verdicts.stats
        # Before compaction: the rollups read this batch's commit directories, which a
        # compaction would add folded rows to.
        if self._write_rollups(verdicts.rollup_reads, batch_id):
            self._lap("rollups")
        if self._write_ops_rollups(verdicts.ops_rollups, verdicts.ops_reads):
            self._lap("ops rollups")
        compacted = self._compact(verdicts.compact, batch_id)
        if compacted:
            self._lap("compact")
        stats.update(
            batch_id=batch_id,
            batch_start=started,
            batch_end=self.clock(),
            duration_seconds=round(time.perf_counter() - tick, 3),
        )
        so_far = self.so_far.including(stats)
        stats.update(so_far.row())
        self._commit(stats, batch_id, started.date())
        self.marks = verdicts.rollups.after
        self.ops_mark = verdicts.ops_rollups.after
        self.so_far = so_far
        for table, partition in compacted:
            self.plan.committed(table, partition, batch_id)
            self._compactions[batch_id].add((table, partition))
        new_keys = verdicts.arrivals[EVENT_KEY].to_numpy(dtype=KEY_DTYPE)[verdicts.keep]
        if len(new_keys):
            self.seen.add(new_keys, started)
        note = f", compacted {len(compacted)} partitions" if compacted else ""
        laps = self._laps
        note += (
            " ("
            + ", ".join(
                f"{name} {end - begin:.2f}s" for (_, begin), (name, end) in itertools.pairwise(laps)
            )
            + ")"
        )
        self.log(
            f"batch {batch_id}: {stats['records_read']} read, {stats['silver_rows']} silver, "
            f"{stats['quarantine_rows']} quarantined, {stats['duplicates']} duplicates "
            f"in {stats['duration_seconds']:.2f}s{note}"
        )
        self.lake.forget_attempt(batch_id)
        return stats

    def _decide(self, validated: DataFrame, batch_id: int, started: datetime) -> Verdicts:
        """One small collect answers every count the batch needs, drives dedup, and names
        every partition the batch will write (its journal) before it writes any."""
        verdicts = validated.select(
            (F.size("reasons") > 0).alias("failed"),
            # Every row gets a key (a failed one's is meaningless), so the column stays
            # int64: a null would turn it into float64 and round the 64-bit keys.
            event_key().alias(EVENT_KEY),
            "event_time",
            "arrival_time",
            *ROW_ID,
        ).toPandas()
        records = len(verdicts)
        quarantined = int(verdicts["failed"].sum())
        stats: dict = {
            "records_read": records,
            "bronze_rows": 0,
            "quarantine_rows": quarantined,
            "silver_rows": 0,
            "duplicates": 0,
            "operator_minute_rows": 0,
            "postal_status_minute_rows": 0,
            "cell_minute_rows": 0,
            "max_event_time": None,
            "max_arrival_time": None,
            "source_lag_seconds": None,
            "silver_dates": [],
            "rolled_hours_until": self.marks.hours_until,
            "rolled_days_until": self.marks.days_until,
            "ops_hours_until": self.ops_mark,
        }
        arrivals = verdicts[~verdicts["failed"]].reset_index(drop=True)
        keep = choose_silver(arrivals, self.seen)
        targets: set[Target] = {
            ("bronze", TABLES["bronze"].partition_of(started)),
            ("ops", TABLES["ops"].partition_of(started)),
            ("compactions", ""),
        }
        written: set[Target] = set()  # partitions of compacted tables, for the plan
        if records:
            newest = pd.to_datetime(verdicts["arrival_time"], utc=True).max()
            stats["max_arrival_time"] = newest.to_pydatetime()
            stats["source_lag_seconds"] = round(
                (started - stats["max_arrival_time"]).total_seconds(), 3
            )
        if quarantined:
            written.add(("quarantine", TABLES["quarantine"].partition_of(started)))
        silver_rows = int(keep.sum())
        stats["silver_rows"] = silver_rows
        stats["duplicates"] = records - quarantined - silver_rows
        if silver_rows:
            kept_times = pd.to_datetime(arrivals["event_time"][keep], utc=True)
            stats["max_event_time"] = kept_times.max().to_pydatetime()
            stats["silver_dates"] = sorted(set(kept_times.dt.date))
            targets.update(
                ("silver", TABLES["silver"].partition_path({"event_date": d}))
                for d in stats["silver_dates"]
            )
            hours = set(zip(kept_times.dt.date, kept_times.dt.hour, strict=True))
            for table in (t.name for t in GOLD_MINUTE):
                written.update(
                    (table, TABLES[table].partition_path({"event_date": d, "event_hour": h}))
                    for d, h in hours
                )
        rollups = RollupPlan(
            self.marks, self.marks.advanced(stats["max_event_time"], started), batch_id
        )
        stats["rolled_hours_until"] = rollups.after.hours_until
        stats["rolled_days_until"] = rollups.after.days_until
        for table, partition in written:
            self.plan.wrote(table, partition, batch_id)
        rollup_reads = self._plan_rollups(rollups, written)
        for table, reads in rollup_reads.items():
            for partition in {TABLES[table].partition_of(period) for _, _, period in reads}:
                written.add((table, partition))
                self.plan.wrote(table, partition, batch_id)
        ops_rollups = OpsRollupPlan.of(self.ops_mark, started, batch_id)
        stats["ops_hours_until"] = ops_rollups.after
        ops_reads = ops_rollups.reads(self._current)
        if ops_reads:
            # In the journal as partitions it may write: compaction's plan learns the ones
            # it did write after the writes (``_write_ops_rollups``).
            targets |= ops_reads.writes
        # The commit row, written last.
        self.plan.wrote("ops", TABLES["ops"].partition_of(started), batch_id)
        compact = self.plan.due(batch_id, started)
        targets |= written | set(compact)
        return Verdicts(
            stats, arrivals, keep, targets, compact, rollups, rollup_reads, ops_rollups, ops_reads
        )

    def _current(self, table: str) -> dict[str, int]:
        """Each partition of ``table`` with current files, and its latest compaction."""
        return {p: files.since for (t, p), files in self.plan.partitions.items() if t == table}

    def _plan_rollups(self, rollups: RollupPlan, written: set[Target]) -> dict[str, list]:
        """Per rollup table, the partitions of its source it folds in this batch."""
        reads: dict[str, list] = {}
        for minute, grains in ROLLUPS.items():
            hour, day = grains["hour"], grains["day"]
            mine = {p for t, p in written if t == minute}
            reads[hour.name] = rollups.reads("hour", self._current(minute), mine)
            hours = {hour.partition_of(period) for _, _, period in reads[hour.name]}
            reads[day.name] = rollups.reads("day", self._current(hour.name), hours)
        return {table: found for table, found in reads.items() if found}

    def _write_ops_rollups(self, plan: OpsRollupPlan, reads: OpsReads | None) -> bool:
        """Write ``_ops``'s and quarantine's sealed hours, then the days that fold them.
        False when the batch seals none."""
        if reads is None:
            return False
        for table, rows in sealed_hours(self.lake, plan, reads).items():
            self._write_rolled(table, rows, plan.batch_id)
        for table, rows in sealed_days(self.lake, plan, reads).items():
            self._write_rolled(table, rows, plan.batch_id)
        return True

    def _write_rolled(self, table: str, rows: DataFrame, batch_id: int) -> None:
        """Write rollup rows and tell compaction's plan the partitions they landed in: a
        sealed hour with no batch has no row, so the plan learns them from the rows, not
        from the journal's partitions that might be written."""
        spec = TABLES[table]
        rows = rows.persist()
        try:
            landed = rows.select(*spec.partitions).distinct().collect()
            self.lake.write(table, rows, batch_id)
        finally:
            rows.unpersist()
        for values in landed:
            self.plan.wrote(table, spec.partition_path(values.asDict()), batch_id)

    def _write_rollups(self, reads: dict[str, list], batch_id: int) -> bool:
        """Write the hour rollups, then the days that fold them; the gold tables two at a
        time. False when the batch rolls nothing up."""
        if not reads:
            return False

        def roll(grains: dict) -> None:
            for grain in ("hour", "day"):
                table = grains[grain]
                rows = rollup_rows(self.lake, table, reads.get(table.name, []), batch_id)
                if rows is not None:
                    self.lake.write(table.name, rows, batch_id)

        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="rollup") as pool:
            list(pool.map(roll, ROLLUPS.values()))
        return True

    def _write_layers(
        self,
        raw: DataFrame,
        validated: DataFrame,
        verdicts: Verdicts,
        batch_id: int,
        started: datetime,
    ) -> None:
        """Write bronze, quarantine, silver and gold, counting rows into the _ops stats."""
        stats = verdicts.stats
        # Each write is one Spark task; bronze runs beside quarantine, silver and gold,
        # so both cores write. The pool's threads then take two of the three gold writes.
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="writer") as pool:
            bronze = pool.submit(self.lake.write, "bronze", to_bronze(raw, started), batch_id)
            if stats["quarantine_rows"]:
                self.lake.write("quarantine", to_quarantine(validated), batch_id)
            if stats["silver_rows"]:
                self._write_silver_and_gold(
                    validated=validated,
                    arrivals=verdicts.arrivals,
                    keep=verdicts.keep,
                    batch_id=batch_id,
                    stats=stats,
                    pool=pool,
                )
            self._lap("gold")
            stats["bronze_rows"] = bronze.result()
            self._lap("bronze")

    def _lap(self, name: str) -> None:
        """Mark the end of a step of the batch: the log line says where the time went."""
        self._laps.append((name, time.perf_counter()))

    def _write_silver_and_gold(
        self,
        *,
        validated: DataFrame,
        arrivals: pd.DataFrame,
        keep: np.ndarray,
        batch_id: int,
        stats: dict,
        pool: ThreadPoolExecutor,
    ) -> None:
        # Most batches drop nothing: then silver and each gold table derived from it skip a
        # join whose broadcast is a Spark job of its own (measured: 2,500-record batches
        # took a quarter less).
        dropped = (
            None
            if keep.all()
            else self.spark.createDataFrame(
                arrivals.loc[~keep, ROW_ID], "shard_id string, sequence_number string"
            )
        )
        # Not cached: each of the three writes re-derives it from the cached verdicts, which
        # costs less than building a cache of every silver column.
        silver = to_silver(valid_events(validated), dropped)
        self.lake.write("silver", silver, batch_id)
        self._lap("silver")
        # The gold tables side by side, each write a single small task: postal status here,
        # operator and cell on the pool's threads (cell as soon as bronze is written), so
        # one plans, commits and lists on the driver while another runs. At 200 events/s
        # the gold step took 1.09-1.13 s a batch against 1.42-1.48 s with cell written
        # after the other two (medians of about 25 batches, two runs each, 2026-12-07).
        operator_minute = pool.submit(
            self.lake.write, "gold_operator_minute", to_operator_minute(silver), batch_id
        )
        cell_minute = pool.submit(
            self.lake.write, "gold_cell_minute", to_cell_minute(silver), batch_id
        )
        stats["postal_status_minute_rows"] = self.lake.write(
            "gold_postal_status_minute", to_postal_status_minute(silver), batch_id
        )
        stats["operator_minute_rows"] = operator_minute.result()
        stats["cell_minute_rows"] = cell_minute.result()

    def _compact(self, due: list[Target], batch_id: int) -> list[Target]:
        """Fold the partitions that are due into files of this batch; return them.

        Each partition is one Spark job (its rows are counted while they are folded), and
        two tables fold side by side, as the layers' writes do. The partitions of one table
        fold one after another: two Spark writes into one table's directory at once share
        its ``_temporary`` directory, and the first to finish deletes it under the other.
        """
        if not due:
            return []
        by_table: dict[str, list[str]] = defaultdict(list)
        for table, partition in due:
            by_table[table].append(partition)

        def fold_table(table: str) -> list:
            return [self._fold(table, partition, batch_id) for partition in by_table[table]]

        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="compact") as pool:
            folded = [record for records in pool.map(fold_table, by_table) for record in records]
        records = [record for record in folded if record is not None]
        if records:
            frame = self.spark.createDataFrame(records, table_schema(COMPACTIONS))
            self.lake.write("compactions", frame, batch_id)
        return [(table, partition) for table, partition, *_ in records]

    def _fold(self, table: str, partition: str, batch_id: int) -> tuple | None:
        """Fold one partition's current rows into batch ``batch_id``; its compactions row."""
        files = self.plan.partitions[(table, partition)]
        rows = self.lake.read_partition(table, partition, files.since, batch_id - 1)
        if rows is None:
            return None
        read = Observation(f"fold-{table}-{partition}-{batch_id}")
        rows = rows.observe(read, F.count(F.lit(1)).alias("rows"))
        after = self.lake.write(table, fold_rows(TABLES[table], rows), batch_id)
        return (table, partition, int(read.get["rows"]), after, files.since)

    def _commit(self, stats: dict, batch_id: int, batch_date: date) -> None:
        row = {f.name: stats.get(f.name) for f in OPS_SCHEMA.fields}
        row["batch_date"] = batch_date
        ops = self.spark.createDataFrame([row], OPS_SCHEMA)
        # The commit point, written last, beside any rows a compaction of today's _ops put in
        # this batch's directory.
        self.lake.write("ops", ops, batch_id)
        self.last_committed = batch_id

    # -- compaction state --------------------------------------------------------------
    def _restore_compaction_state(self) -> None:
        """What is current on disk: the latest committed compaction of each partition, and
        every commit directory; superseded files found now get a full grace period."""
        last = -1 if self.last_committed is None else self.last_committed
        since: dict[tuple[str, str], int] = {}
        done = self.lake.read("compactions")
        if done is not None:
            for row in done.where(F.col("commit_id") <= last).collect():
                key = (row["table_name"], row["partition_path"])
                since[key] = max(since.get(key, -1), row["commit_id"])
                self._compactions[row["commit_id"]].add(key)
        oldest: dict[tuple[str, str], int] = {}  # each partition's oldest commit on disk
        for spec in COMPACTED:
            by_partition: dict[str, list[int]] = defaultdict(list)
            for partition, commit in self.lake.commit_dirs(spec.name):
                by_partition[partition].append(commit)
            for partition, commits in by_partition.items():
                oldest[(spec.name, partition)] = min(commits)
                if min(commits) <= last:
                    self.plan.restore(
                        spec.name, partition, since.get((spec.name, partition), -1), commits, last
                    )
        # Partitions whose superseded files were deleted before a stop: their rows can go.
        for commit, partitions in self._compactions.items():
            for key in partitions:
                if oldest.get(key, commit) >= commit:
                    self._collected[key] = max(self._collected.get(key, -1), commit)

    def _collect_garbage(self) -> None:
        """Delete superseded files whose grace period is over, then compaction rows that
        no longer describe any file."""
        for stale in self.plan.collectable():
            self.lake.delete_older_commits(stale.table, stale.partition, stale.commit)
            key = (stale.table, stale.partition)
            self._collected[key] = max(self._collected.get(key, -1), stale.commit)
        # A compaction's row matters only while files it superseded are still on disk: a
        # reader then needs it to skip them. Once they are gone, the row goes too, so the
        # compactions table stays a few files however long the job runs.
        # The newest row stays: readers' views need the table to hold a file.
        newest = max(self._compactions, default=None)
        for commit, partitions in list(self._compactions.items()):
            if commit == newest:
                continue
            if all(self._collected.get(key, -1) >= commit for key in partitions):
                self.lake.delete_commit("compactions", commit)
                del self._compactions[commit]
