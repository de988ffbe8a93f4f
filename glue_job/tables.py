"""Lake layout (all layers): table locations, partitions and columns, free of Spark.

The one description of every table: the Spark schemas, the Parquet layout, the
DuckDB views and the Glue catalog are all derived from it, and the dashboard
can import it without a JVM.

Every file lives under ``<path>/<date partitions>/commit=N/``: written by batch N, made
visible by batch N's commit (its ``_ops`` row), replaced whole when batch N is retried.
Rows carry that id as the column ``commit_id`` (a data column, so Athena, which only
projects the date partitions, sees it too). Compaction (``glue_job.compaction``) folds the
files of a partition written before batch N into new files of batch N; readers tell which
files are current from the ``compactions`` table (see ``backend.catalog``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from glue_job.contract import FIELDS, H3_RESOLUTIONS, SIGNAL_BANDS, STATUS_LABELS, h3_column

BAND_COLUMNS: tuple[str, ...] = tuple(f"signal_{band}" for band, _ in SIGNAL_BANDS)
# Events per status code, as columns of the coverage cells' gold: status_in_service, ...
STATUS_COLUMNS: dict[int, str] = {
    code: f"status_{label.lower()}" for code, label in STATUS_LABELS.items()
}
COMMIT_DIR = "commit"  # the directory level below the date partitions: commit=N
_PARTITION_KINDS = {
    "ingest_date": "date",
    "ingest_hour": "int",
    "event_date": "date",
    "event_hour": "int",
    "event_month": "date",  # the first day of the month
    "batch_date": "date",
    "batch_month": "date",  # the first day of the month
    "ingest_month": "date",  # the first day of the month
}
# The partition value of a moment, per level.
_PARTITION_VALUES = {
    "ingest_date": lambda moment: moment.date(),
    "ingest_hour": lambda moment: moment.hour,
    "event_date": lambda moment: moment.date(),
    "event_hour": lambda moment: moment.hour,
    "event_month": lambda moment: moment.date().replace(day=1),
    "batch_date": lambda moment: moment.date(),
    "batch_month": lambda moment: moment.date().replace(day=1),
    "ingest_month": lambda moment: moment.date().replace(day=1),
}


# The period a partition value covers, per level: [its start, start + one of these).
_PARTITION_PERIODS = {
    "ingest_date": "day",
    "ingest_hour": "hour",
    "event_date": "day",
    "event_hour": "hour",
    "event_month": "month",
    "batch_date": "day",
    "batch_month": "month",
    "ingest_month": "month",
}


def _partition_text(value) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


@dataclass(frozen=True)
class Table:
    name: str  # the name queries use: the catalog table, or the view over it when compacted
    path: str  # under the lake root
    partitions: tuple[str, ...]  # directory levels above commit=N
    columns: tuple[tuple[str, str], ...]  # data columns (name, type) in file order
    # How compaction folds a partition's rows: "merge" sums the partial aggregates per
    # ``keys`` (``*_min``/``*_max`` columns take the min/max), "append" keeps every row.
    compaction: str | None = None
    keys: tuple[str, ...] = ()
    # Rows are written in this order, in small row groups, so a query over a short time
    # range reads only the row groups of that range from a compacted day's file.
    sort_by: tuple[str, ...] = ()
    # Columns were added after lakes had files of this table: a reader matches each file's
    # columns by name, and a column a file lacks reads as NULL.
    grown: bool = False

    @property
    def partition_types(self) -> tuple[tuple[str, str], ...]:
        return tuple((p, _PARTITION_KINDS[p]) for p in self.partitions)

    @property
    def files_name(self) -> str:
        """The catalog name of the files themselves: a compacted table is read through a
        view of that name's rows that are current (``backend.catalog``)."""
        return f"{self.name}_files" if self.compaction else self.name

    def partition_path(self, values: dict) -> str:
        """A partition's directory below the table, e.g. ``event_date=2026-12-01/event_hour=9``:
        how compaction names the partition it folds (Spark writes the values with str())."""
        return "/".join(f"{p}={_partition_text(values[p])}" for p in self.partitions)

    def partition_of(self, moment) -> str:
        """The partition a row of this moment lands in (for tables keyed by time alone)."""
        return self.partition_path({p: _PARTITION_VALUES[p](moment) for p in self.partitions})

    @property
    def partitioned_by_time(self) -> bool:
        """Whether each partition directory covers a period of time (``partition_period``)."""
        return bool(self.partitions) and all(p in _PARTITION_PERIODS for p in self.partitions)

    def partition_period(self, values: dict[str, str]) -> tuple[datetime, datetime]:
        """The UTC period ``[start, end)`` a partition directory covers, from its levels'
        values as the path spells them, outermost first (``{"event_date": "2026-12-01",
        "event_hour": "9"}``, or just the date for the whole day). ValueError when the
        values are not this table's partition values."""
        levels = [p for p in self.partitions if p in values]
        try:
            if not levels or levels != list(self.partitions[: len(levels)]):
                raise ValueError("levels")
            first = date.fromisoformat(values[levels[0]])
            start = datetime(first.year, first.month, first.day, tzinfo=UTC)
            period = _PARTITION_PERIODS[levels[-1]]
            if period == "hour":
                hour = int(values[levels[-1]])
                if not 0 <= hour < 24:
                    raise ValueError("hour")
                start += timedelta(hours=hour)
                return start, start + timedelta(hours=1)
        except ValueError:
            raise ValueError(f"not a partition of {self.name}: {values}") from None
        if period == "month":
            after = date(first.year + first.month // 12, first.month % 12 + 1, 1)
            return start, datetime(after.year, after.month, 1, tzinfo=UTC)
        return start, start + timedelta(days=1)

    def file_glob(self, root: str) -> str:
        levels = [f"{p}=*" for p in self.partitions]
        return "/".join([root.rstrip("/"), self.path, *levels, f"{COMMIT_DIR}=*", "*.parquet"])


# Which micro-batch read a record, and which batch's commit made its file visible (the same
# batch, unless compaction rewrote the file). The writer adds them (``ParquetLake.write``).
_BATCH = (("batch_id", "long"), ("commit_id", "long"))
WRITER_COLUMNS = frozenset(name for name, _ in _BATCH)

_BRONZE = (
    ("payload", "string"),
    ("payload_base64", "string"),
    ("stream_name", "string"),
    ("shard_id", "string"),
    ("sequence_number", "string"),
    ("partition_key", "string"),
    ("arrival_time", "timestamp"),
    ("ingest_time", "timestamp"),
    *_BATCH,
)

# The contract's kinds as column types; the job adds ``status_label`` (``STATUS_LABELS``)
# after ``status``, and the event's H3 cells (``contract.h3_cells``) after its position.
_EVENT_KINDS = {"string": "string", "timestamp": "timestamp", "int": "int", "number": "double"}


def _event_columns() -> tuple[tuple[str, str], ...]:
    columns = []
    for spec in FIELDS:
        columns.append((spec.name, _EVENT_KINDS[spec.kind]))
        if spec.name == "status":
            columns.append(("status_label", "string"))
        if spec.name == "longitude":
            columns.extend((h3_column(r), "string") for r in H3_RESOLUTIONS)
    return tuple(columns)


# A silver event: the contract's fields (``glue_job.contract.FIELDS``), in its order.
EVENT_COLUMNS: tuple[tuple[str, str], ...] = _event_columns()

BRONZE = Table("bronze", "bronze", ("ingest_date", "ingest_hour"), _BRONZE)
SILVER = Table(
    "silver",
    "silver",
    ("event_date",),
    (*EVENT_COLUMNS, ("arrival_time", "timestamp"), ("ingest_time", "timestamp"), *_BATCH),
)
QUARANTINE = Table(
    "quarantine",
    "quarantine",
    ("ingest_date",),
    (
        ("payload", "string"),
        ("payload_base64", "string"),
        ("reasons", "array<string>"),
        ("event_id", "string"),
        ("shard_id", "string"),
        ("sequence_number", "string"),
        ("arrival_time", "timestamp"),
        ("ingest_time", "timestamp"),
        *_BATCH,
    ),
    compaction="append",
    sort_by=("ingest_time",),
)
# Gold is cut by the hour too: compaction rewrites one hour of a day, never the whole day.
OPERATOR_MINUTE = Table(
    "gold_operator_minute",
    "gold/operator_minute",
    ("event_date", "event_hour"),
    (
        ("minute", "timestamp"),
        ("operator", "string"),
        ("events", "long"),
        ("signal_sum", "double"),
        ("signal_count", "long"),
        ("signal_min", "double"),
        ("signal_max", "double"),
        *((name, "long") for name in BAND_COLUMNS),
        ("precision_sum", "double"),
        ("precision_count", "long"),
        ("commit_id", "long"),
    ),
    compaction="merge",
    keys=("minute", "operator"),
    sort_by=("minute", "operator"),
)
POSTAL_STATUS_MINUTE = Table(
    "gold_postal_status_minute",
    "gold/postal_status_minute",
    ("event_date", "event_hour"),
    (
        ("minute", "timestamp"),
        ("postal_code", "string"),
        ("operator", "string"),
        ("status", "int"),
        ("status_label", "string"),
        ("events", "long"),
        ("signal_sum", "double"),
        ("signal_count", "long"),
        ("position_count", "long"),
        ("latitude_sum", "double"),
        ("longitude_sum", "double"),
        ("commit_id", "long"),
    ),
    compaction="merge",
    keys=("minute", "postal_code", "operator", "status", "status_label"),
    # By postal code first: the Map and the KPIs' postal filter read one or a few codes
    # over a range, and each row group's min/max of postal_code lets DuckDB and Athena skip
    # the rest. Time needs no help here: partitions are hours, and ranges compose whole
    # hours from the rollups. Sorted by minute first, one code's trend over a day read
    # 3.1 MB of minute rows (bench/results.md, 2026-12-05 12:03).
    sort_by=("postal_code", "minute"),
)

# Coverage: per H3 cell (at each of ``contract.H3_RESOLUTIONS``), operator and minute. A
# banner's events (no operator) have operator NULL, as in the other gold tables.
CELL_MINUTE = Table(
    "gold_cell_minute",
    "gold/cell_minute",
    ("event_date", "event_hour"),
    (
        ("minute", "timestamp"),
        ("resolution", "int"),
        ("cell", "string"),
        ("operator", "string"),
        ("events", "long"),
        ("signal_sum", "double"),
        ("signal_count", "long"),
        *((name, "long") for name in BAND_COLUMNS),
        *((name, "long") for name in STATUS_COLUMNS.values()),
        ("commit_id", "long"),
    ),
    compaction="merge",
    keys=("minute", "resolution", "cell", "operator"),
    sort_by=("minute", "resolution", "cell"),
)
# The minute gold tables, which the job writes from silver in every batch.
GOLD_MINUTE: tuple[Table, ...] = (OPERATOR_MINUTE, POSTAL_STATUS_MINUTE, CELL_MINUTE)


def rollup(minute: Table, grain: str) -> Table:
    """The ``grain`` ("hour" or "day") rollup of a minute gold table: the same mergeable
    sums per key, with the period's start in a ``grain`` column where the minute was. It
    keeps the first and last minute it holds (``minute_min``, ``minute_max``), so the span
    of the data stays exact. Hours are cut by day, days by month."""
    columns = []
    for name, kind in minute.columns:
        if name == "minute":
            columns += [(grain, kind), ("minute_min", kind), ("minute_max", kind)]
        else:
            columns.append((name, kind))
    return Table(
        f"{minute.name.removesuffix('_minute')}_{grain}",
        f"{minute.path.removesuffix('_minute')}_{grain}",
        ("event_date",) if grain == "hour" else ("event_month",),
        tuple(columns),
        compaction="merge",
        keys=tuple(grain if k == "minute" else k for k in minute.keys),
        sort_by=tuple(grain if k == "minute" else k for k in minute.sort_by),
    )


GRAINS = ("hour", "day")
# Each minute gold table and its rollups, finest first.
ROLLUPS: dict[str, dict[str, Table]] = {
    minute.name: {grain: rollup(minute, grain) for grain in GRAINS} for minute in GOLD_MINUTE
}

OPS = Table(
    "ops",
    "_ops",
    ("batch_date",),
    (
        ("batch_id", "long"),
        ("batch_start", "timestamp"),
        ("batch_end", "timestamp"),
        ("records_read", "long"),
        ("bronze_rows", "long"),
        ("silver_rows", "long"),
        ("quarantine_rows", "long"),
        ("duplicates", "long"),
        ("operator_minute_rows", "long"),
        ("postal_status_minute_rows", "long"),
        ("cell_minute_rows", "long"),
        ("max_event_time", "timestamp"),
        ("max_arrival_time", "timestamp"),
        ("source_lag_seconds", "double"),
        ("duration_seconds", "double"),
        # The event dates of the silver rows the batch wrote: a restart reads only those
        # partitions of silver to rebuild its dedup index (``glue_job.batch``).
        ("silver_dates", "array<date>"),
        # Gold's rollups are complete for every hour before ``rolled_hours_until`` and
        # every day before ``rolled_days_until`` as of this commit (``glue_job.rollups``).
        ("rolled_hours_until", "timestamp"),
        ("rolled_days_until", "timestamp"),
        # ``_ops``'s own rollups are complete for every hour (and day) of batch starts
        # before this mark as of this commit (``glue_job.rollups.OpsRollupPlan``).
        ("ops_hours_until", "timestamp"),
        # As of this commit, over every batch up to it that read records: how many, when
        # the newest of them committed, and the newest event and arrival times they
        # committed; and of those that wrote silver, the newest commit and arrival
        # (``glue_job.batch.SoFar``). A reader's freshness line and each layer's freshness
        # need only the committed batch's row, not the whole table
        # (backend/sql/freshness.sql).
        ("batches_so_far", "long"),
        ("last_commit_so_far", "timestamp"),
        ("newest_event_so_far", "timestamp"),
        ("newest_arrival_so_far", "timestamp"),
        ("silver_commit_so_far", "timestamp"),
        ("silver_arrival_so_far", "timestamp"),
        ("commit_id", "long"),
    ),
    compaction="append",
    sort_by=("batch_id",),
    # the *_so_far columns (2026-12-05), the silver_* ones (2026-12-06), ops_hours_until
    # (2026-12-07)
    grown=True,
)


def _ops_rollup(grain: str) -> Table:
    """The ``grain`` ("hour" or "day") rollup of ``_ops``: per period of batch start, the
    sums, extremes and counts the Pipeline Health page draws, all mergeable (``*_min`` and
    ``*_max`` fold by min and max, the rest by sum), so a range composed of rollups and raw
    commit rows answers exactly as the raw rows do (``backend.ranges``). Hours are cut by
    day, days by month, as gold's rollups are."""
    return Table(
        f"ops_{grain}",
        f"_ops_{grain}",
        ("batch_date",) if grain == "hour" else ("batch_month",),
        (
            (grain, "timestamp"),
            ("batches", "long"),
            ("records", "long"),
            ("bronze_rows", "long"),
            ("silver_rows", "long"),
            ("quarantine_rows", "long"),
            ("duplicates", "long"),
            # batches whose own counts do not reconcile (a NULL count does not)
            ("mismatched_batches", "long"),
            # the rows the quarantine table held for these batches when the hour was sealed
            ("quarantine_table_rows", "long"),
            ("batch_id_min", "long"),
            ("batch_id_max", "long"),
            ("batch_start_min", "timestamp"),
            ("batch_start_max", "timestamp"),
            ("busy_seconds", "double"),  # Σ duration_seconds
            ("duration_seconds_max", "double"),
            ("source_lag_sum", "double"),
            ("source_lag_count", "long"),
            ("source_lag_seconds_max", "double"),
            # Batches timed against the batch before them in the same clock hour: their
            # records and the seconds those arrived over (the input rate's two sums).
            ("timed_records", "long"),
            ("timed_seconds", "double"),
            ("commit_id", "long"),
        ),
        compaction="merge",
        keys=(grain,),
        sort_by=(grain,),
    )


# ``_ops``'s rollups, by grain: Pipeline Health over a month reads some thirty day rows
# instead of 1.3 M commit rows.
OPS_ROLLUPS: dict[str, Table] = {grain: _ops_rollup(grain) for grain in GRAINS}


def _quarantine_rollup(grain: str) -> Table:
    """The ``grain`` rollup of quarantine's reasons: records per reason code and period of
    ingest (batch start), a record counting once under each reason it carries. Sealed with
    ``_ops``'s rollups, by the same batches."""
    return Table(
        f"quarantine_{grain}",
        f"_quarantine_{grain}",
        ("ingest_date",) if grain == "hour" else ("ingest_month",),
        ((grain, "timestamp"), ("reason", "string"), ("records", "long"), ("commit_id", "long")),
        compaction="merge",
        keys=(grain, "reason"),
        sort_by=(grain, "reason"),
    )


QUARANTINE_ROLLUPS: dict[str, Table] = {grain: _quarantine_rollup(grain) for grain in GRAINS}
# The rollups of the tables keyed by batch start, which the same plan seals
# (``glue_job.rollups.OpsRollupPlan``), by their source.
BATCH_ROLLUPS: dict[str, dict[str, Table]] = {"ops": OPS_ROLLUPS, "quarantine": QUARANTINE_ROLLUPS}
# One row per partition a batch compacted: from that batch's commit on, the partition's
# current rows are those of commits at or after it.
COMPACTIONS = Table(
    "compactions",
    "_compactions",
    (),
    (
        ("table_name", "string"),
        ("partition_path", "string"),  # Table.partition_path: event_date=2026-12-01/event_hour=9
        ("rows_before", "long"),
        ("rows_after", "long"),
        ("first_commit_id", "long"),
        ("commit_id", "long"),
    ),
)

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        BRONZE,
        SILVER,
        QUARANTINE,
        *GOLD_MINUTE,
        *(table for grains in ROLLUPS.values() for table in grains.values()),
        OPS,
        *OPS_ROLLUPS.values(),
        *QUARANTINE_ROLLUPS.values(),
        COMPACTIONS,
    )
}
COMPACTED: tuple[Table, ...] = tuple(t for t in TABLES.values() if t.compaction)
