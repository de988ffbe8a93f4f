"""Query engines (catalog + SQL layer): ``run(sql, params) -> pandas.DataFrame``.

``DuckDBEngine`` serves the local lake with views over the same Parquet that
Athena reads in AWS; the views have the catalog's table names, so one SQL text
runs on both.

Why one module of about 550 lines: it is the one place that knows how SQL reaches data.
Both engines answer the same ``QueryEngine`` protocol, and the DuckDB half is most of it:
the views (or empty stand-ins while a table has no files), the per-query file lists of the
partitions a ``Scope`` overlaps, and the retry when compaction removes a listed file.
Splitting the engines apart would put the protocol, the shared timing (``_LastQuery``)
and the error wording in a third module that both import.
"""

from __future__ import annotations

import glob
import json
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import duckdb
import pandas as pd
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from backend.catalog import current_views
from backend.errors import QueryError
from backend.ranges import Interval, Scope
from glue_job.tables import BATCH_ROLLUPS, COMMIT_DIR, ROLLUPS, TABLES, Table

_DUCKDB_TYPES = {
    "string": "VARCHAR",
    "binary": "BLOB",
    "int": "INTEGER",
    "long": "BIGINT",
    "double": "DOUBLE",
    "date": "DATE",
    "timestamp": "TIMESTAMPTZ",
    "array<string>": "VARCHAR[]",
    "array<date>": "DATE[]",
}


class QueryEngine(Protocol):
    """``run`` takes the SQL, its ``?`` values, and the ``Scope`` of its windows
    (``backend.ranges.scope_of``): a hint of which partitions can hold its rows, for an
    engine that lists files itself. The SQL states the same ranges on its partition
    columns, so an engine may ignore the hint (Athena prunes by partition projection)."""

    name: str

    def run(
        self, sql: str, params: Sequence[object] = (), *, scope: Scope | None = None
    ) -> pd.DataFrame: ...


# The DuckDB variable that carries a query's file lists (``DuckDBEngine._files_in``): a map
# from table name to files. A table it does not name reads its whole glob.
FILES_VARIABLE = "telcopulse_files"
# The grain of each table's rows, for the ``Scope`` part that bounds its partitions: the
# rollups by name, everything else keyed by a moment (minute rows, ingest or batch time).
_HOURS = frozenset(t["hour"].name for t in (*ROLLUPS.values(), *BATCH_ROLLUPS.values()))
_DAYS = frozenset(t["day"].name for t in (*ROLLUPS.values(), *BATCH_ROLLUPS.values()))


class _LastQuery:
    """``last_seconds`` and ``last_bytes_read`` of the calling thread's latest query: one
    engine serves every viewer, and a page runs independent queries at once
    (``dashboard.page.Page.warm``), so each thread reads back its own."""

    @property
    def _last(self) -> threading.local:
        found = self.__dict__.get("_last_query")
        if found is None:
            found = self.__dict__.setdefault("_last_query", threading.local())
        return found

    @property
    def last_seconds(self) -> float:
        return getattr(self._last, "seconds", 0.0)

    @last_seconds.setter
    def last_seconds(self, value: float) -> None:
        self._last.seconds = value

    @property
    def last_bytes_read(self) -> int | None:
        return getattr(self._last, "bytes_read", None)

    @last_bytes_read.setter
    def last_bytes_read(self, value: int | None) -> None:
        self._last.bytes_read = value


# DuckDB keeps native memory per database that grows with the queries it has run and is
# given back only when the database closes. Measured on DuckDB 2.0.1 (1.4.5 and 1.5.6 the
# same): a window function over 500 partitions of an in-memory table kept about 8 KB a run,
# levelling off after some 12,000 runs (24 -> 51 MB in use), all freed by closing the
# database. The dashboard's own queries kept up to 30 KB a run each (the current-rows views
# partition by ``partition_path``), 20-48 MB an hour in the soaks (docs/soak-history.md).
# So the engine moves to a new in-memory database at this age and closes the old one once
# its last query ends. Home's queries, run again and again on a one-day lake, kept 41 KB a
# run without it (300 runs) and held level with it (400 runs; glibc's bytes in use). The
# first query on a new database pays for its views, about 75 ms. Closing and reopening is
# also what other long-running DuckDB services do about it (e.g. Basekick-Labs/arc#27,
# carbonplan/ocr#313).
RECYCLE_SECONDS = 300.0


class _Database:
    """One in-memory DuckDB database: its connection, the views made in it so far, and how
    many queries run on it (a retired database closes when the last of them ends)."""

    def __init__(self) -> None:
        self.con = duckdb.connect(":memory:")
        self.con.execute("SET TimeZone = 'UTC'")
        self.opened = time.monotonic()
        self.lock = threading.Lock()  # guards the views
        self.live: set[str] = set()  # tables whose view reads files (not the empty stand-in)
        self.stand_ins: set[str] = set()
        self.current = False  # the views of current rows over compacted tables
        self.running = 0
        self.retired = False

    def close_if_done(self) -> None:
        """Close a retired database that no query runs on any more."""
        if self.retired and self.running == 0:
            self.con.close()


class DuckDBEngine(_LastQuery):
    """Local SQL over ``<lake>/…`` Parquet, counting only what the files hold right now.

    A query with a ``Scope`` reads only the files of the partitions its windows overlap:
    the engine lists those partitions' directories itself, per query, instead of DuckDB
    globbing every file of the table (a month of minute gold is some 750 files, and the
    glob alone took about 18 ms a query; a range now lists its own edges). The list goes
    to the table's view in a per-cursor variable, so concurrent queries never share one.
    """

    name = "duckdb"

    def __init__(
        self,
        lake_root: str | Path,
        *,
        measure_io: bool = False,
        recycle_seconds: float = RECYCLE_SECONDS,
    ) -> None:
        """``measure_io`` profiles every query to fill ``last_bytes_read`` (a few hundred
        microseconds a query: benchmarks turn it on, the dashboard leaves it off).
        ``recycle_seconds``: the age at which the next query opens a new database
        (``RECYCLE_SECONDS``)."""
        self.lake_root = str(lake_root)
        self.measure_io = measure_io
        self.recycle_seconds = recycle_seconds
        self.last_bytes_read: int | None = None
        self._lock = threading.Lock()
        self._db = _Database()
        self.last_seconds = 0.0

    def _checkout(self) -> _Database:
        """The database a query runs on, counted as running there: a new one in place of
        the current one once that is ``recycle_seconds`` old."""
        with self._lock:
            if time.monotonic() - self._db.opened >= self.recycle_seconds:
                self._db.retired = True
                self._db.close_if_done()
                self._db = _Database()
            self._db.running += 1
            return self._db

    def _checkin(self, db: _Database) -> None:
        """A query on ``db`` ended: a retired database closes with its last query."""
        with self._lock:
            db.running -= 1
            db.close_if_done()

    def _refresh_views(self, db: _Database) -> None:
        with db.lock:
            for table in TABLES.values():
                if table.name in db.live:
                    continue
                # The view's own pattern: a writer's _temporary files must not count.
                has_files = next(glob.iglob(table.file_glob(self.lake_root)), None)
                if has_files is not None:
                    db.con.execute(_parquet_view(table, self.lake_root))
                    db.live.add(table.name)
                elif table.name not in db.stand_ins:
                    db.con.execute(_empty_view(table))
                    db.stand_ins.add(table.name)
            if not db.current:
                for sql in current_views().values():
                    db.con.execute(sql)
                db.current = True

    def run(
        self, sql: str, params: Sequence[object] = (), *, scope: Scope | None = None
    ) -> pd.DataFrame:
        started = time.perf_counter()
        db = self._checkout()
        try:
            for attempt in Retrying(
                retry=retry_if_exception(_listed_file_gone),
                stop=stop_after_attempt(LISTING_ATTEMPTS),
                wait=LISTING_WAIT,
                reraise=True,
            ):
                with attempt:
                    # Creating a view lists and opens files too: inside the retry.
                    self._refresh_views(db)
                    return self._execute(db, sql, params, scope)
        except duckdb.Error as exc:
            raise QueryError(_one_line(exc)) from exc
        finally:
            self._checkin(db)
            self.last_seconds = time.perf_counter() - started

    def _execute(
        self, db: _Database, sql: str, params: Sequence[object], scope: Scope | None
    ) -> pd.DataFrame:
        """One attempt: list the files (the views' globs, ``scope``'s lists), then read them."""
        cursor = db.con.cursor()
        try:
            if scope is not None:
                self._limit_files(db, cursor, sql, scope)
            if not self.measure_io:
                return cursor.execute(sql, list(params)).df()
            with tempfile.NamedTemporaryFile(suffix=".json") as profile:
                cursor.execute("SET enable_profiling = 'json'")
                cursor.execute(f"SET profiling_output = {_quote(profile.name)}")
                frame = cursor.execute(sql, list(params)).df()
                cursor.execute("SET enable_profiling = 'no_output'")
                # The column chunks of the row groups the scans did not skip: what Athena
                # would bill as data scanned (file footers not included).
                profiled = json.loads(Path(profile.name).read_text())
                self.last_bytes_read = profiled["query"]["total_bytes_scanned"]
                return frame
        finally:
            cursor.close()

    def _limit_files(self, db: _Database, cursor, sql: str, scope: Scope) -> None:
        """Set this cursor's file list of every time-partitioned table ``sql`` names."""
        code = re.sub(r"--[^\n]*", "", sql)
        lists = {
            table.name: (
                self._newest_files(table)
                if scope.newest
                else self._files_in(table, _intervals(table, scope))
            )
            for table in TABLES.values()
            if table.name in db.live
            and table.partitioned_by_time
            and re.search(rf"\b({table.name}|{table.files_name})\b", code)
        }
        lists = {name: files for name, files in lists.items() if files}
        if lists:
            cursor.execute(
                f"SET VARIABLE {FILES_VARIABLE} = map(?, ?)", [list(lists), list(lists.values())]
            )

    def _files_in(self, table: Table, intervals: tuple[Interval, ...]) -> list[str]:
        """The files of the partitions that overlap ``intervals``. None overlapping: one
        file of the table all the same (its rows fail the SQL's own partition predicates),
        since a view cannot read an empty list."""
        overlapping = self._partitions(table, lambda values: _overlaps(table, values, intervals))
        files = [name for directory, _ in overlapping for name in _commit_files(directory)]
        if files:
            return sorted(files)
        first = next(glob.iglob(table.file_glob(self.lake_root)), None)
        return [first] if first else []

    def _newest_files(self, table: Table) -> list[str]:
        """The files of the table's newest partition (by the period it covers) that has any;
        none when it has no files at all (then the view reads its whole glob)."""
        newest_first = sorted(
            self._partitions(table),
            key=lambda found: _period_start(table, found[1]),
            reverse=True,
        )
        for directory, _ in newest_first:
            files = _commit_files(directory)
            if files:
                return sorted(files)
        return []

    def _partitions(
        self, table: Table, keep: Callable[[dict[str, str]], bool] = lambda _: True
    ) -> list[tuple[str, dict[str, str]]]:
        """The table's leaf partition directories, each with its levels' values, walked one
        level at a time and pruned by ``keep`` on the values so far."""
        directories: list[tuple[str, dict[str, str]]] = [
            (os.path.join(self.lake_root, table.path), {})
        ]
        for level in table.partitions:
            directories = [
                (entry.path, values)
                for parent, above in directories
                for entry in _subdirectories(parent, level)
                if keep(values := {**above, level: entry.name.partition("=")[2]})
            ]
        return directories


def _commit_files(partition: str) -> list[str]:
    """The Parquet files of every commit directory of one partition."""
    return glob.glob(os.path.join(partition, f"{COMMIT_DIR}=*", "*.parquet"))


def _period_start(table: Table, values: dict[str, str]) -> datetime:
    """Where a partition's period starts; one this engine cannot read sorts first."""
    try:
        return table.partition_period(values)[0]
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)


def _intervals(table: Table, scope: Scope) -> tuple[Interval, ...]:
    if table.name in _HOURS:
        return scope.hours
    if table.name in _DAYS:
        return scope.days
    return scope.minutes


def _subdirectories(parent: str, level: str):
    try:
        with os.scandir(parent) as entries:
            return [e for e in entries if e.name.startswith(f"{level}=") and e.is_dir()]
    except FileNotFoundError:
        return []


def _overlaps(table: Table, values: dict[str, str], intervals: tuple[Interval, ...]) -> bool:
    """Whether the partition of these directory values overlaps any of ``intervals``."""
    try:
        start, end = table.partition_period(values)
    except ValueError:
        return True  # not a partition this engine understands: read it, as a glob would
    return any(since < end and start < until for since, until in intervals)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _parquet_view(table: Table, root: str) -> str:
    """The table's files: the cursor's list for it (``FILES_VARIABLE``), else its whole
    glob. The commit directory level repeats ``commit_id`` and is dropped."""
    levels = [*table.partition_types, (COMMIT_DIR, "long")]
    hive_types = ", ".join(
        f"{_quote(name)}: {_quote(_DUCKDB_TYPES[kind])}" for name, kind in levels
    )
    files = (
        f"coalesce(map_extract_value(getvariable({_quote(FILES_VARIABLE)}), "
        f"{_quote(table.name)}), [{_quote(table.file_glob(root))}])"
    )
    view = (
        f"CREATE OR REPLACE VIEW {table.files_name} AS SELECT * EXCLUDE ({COMMIT_DIR}) "
        f"FROM read_parquet({files}, hive_partitioning = true, hive_types = {{{hive_types}}}"
    )
    if not table.grown:
        return f"{view})"
    # Files of both shapes (``Table.grown``): each file's columns by name, and every column
    # the table declares, NULL where no file has it yet.
    return f"{view}, union_by_name = true) UNION ALL BY NAME {_no_rows(table)}"


def _no_rows(table: Table) -> str:
    """A SELECT of the table's columns, typed, with no rows."""
    columns = ", ".join(
        f"CAST(NULL AS {_DUCKDB_TYPES[kind]}) AS {name}"
        for name, kind in (*table.columns, *table.partition_types)
    )
    return f"SELECT {columns} WHERE false"


def _empty_view(table: Table) -> str:
    return f"CREATE OR REPLACE VIEW {table.files_name} AS {_no_rows(table)}"


# Compaction's garbage collection deletes superseded files a grace period after a compaction
# made them so (glue_job.compaction): a query listing before the compaction still finds
# every file it listed. A query listing at the very moment of a delete does not: it lists
# the file, then DuckDB cannot open it. The file's rows were already in the compacted one,
# so listing again is the whole answer. A soak at 2,000 events/s hit this after 55 minutes,
# and twice more, while a new engine created its views, in the next hour-long soak.
# The job deletes a compaction's superseded commit directories one after another: three
# listings in a row, with no pause, all met the same sweep once (a 29-minute run at
# 2,000 events/s, a new engine's view of _ops), so each listing after the first waits
# for it to end: 0.1 s, then 0.2 s, then 0.4 s (0.7 s at most before a query fails).
LISTING_ATTEMPTS = 4
LISTING_WAIT = wait_exponential(multiplier=0.1, max=0.4)
# DuckDB's words for it: a view's glob listed the file; a scope's list named it.
_GONE = ("No such file or directory", "No files found that match the pattern")


def _listed_file_gone(exc: BaseException) -> bool:
    return isinstance(exc, duckdb.IOException) and any(words in str(exc) for words in _GONE)


def _one_line(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text[:300]


# The most characters Athena takes in one execution parameter (StartQueryExecution's
# ExecutionParameters: "Length Constraints: Minimum length of 1. Maximum length of 1024").
ATHENA_PARAMETER_LIMIT = 1024


class AthenaEngine(_LastQuery):
    """AWS SQL through pyathena: the project's workgroup (scan limit, encrypted results),
    query result reuse, and server-side bound ``?`` parameters.

    Results go where the workgroup says when it enforces its configuration: a query that
    overrides the result configuration gets no result reuse ("If you override the result
    configuration for a query, the feature is disabled", Athena's "Reuse query results"),
    and an enforcing workgroup ignores the override anyway. ``output`` is used only with a
    workgroup that does not enforce one.
    """

    name = "athena"

    def __init__(
        self,
        *,
        workgroup: str,
        database: str,
        region: str,
        output: str | None = None,
        reuse_minutes: int = 1,
        connect=None,
        enforced: bool | None = None,
    ) -> None:
        """``enforced``: whether the workgroup enforces its own result location; None asks
        Athena (GetWorkGroup) on the first query."""
        if connect is None:
            from pyathena import connect
        self._connect = connect
        self.workgroup, self.database, self.region = workgroup, database, region
        self.output = output
        self.enforced = enforced
        self.reuse_minutes = reuse_minutes
        self.last_bytes_read: int | None = None
        self._conn = None
        self.last_seconds = 0.0

    def _connection(self):
        if self._conn is None:
            from pyathena.pandas.cursor import PandasCursor
            from pyathena.util import RetryConfig

            if self.enforced is None:
                self.enforced = workgroup_enforces_results(self.workgroup, self.region)
            self._conn = self._connect(
                work_group=self.workgroup,
                schema_name=self.database,
                region_name=self.region,
                # "" rather than None: pyathena then also skips AWS_ATHENA_S3_STAGING_DIR.
                s3_staging_dir="" if self.enforced else self.output,
                cursor_class=PandasCursor,
                # Throttling (Athena's TooManyRequestsException and ThrottlingException, S3's
                # SlowDown and 503 on result downloads) is retried by configuration:
                # botocore's adaptive mode (standard retries with backoff, plus client-side
                # rate limiting) on both clients, and pyathena's own retry of throttled API
                # calls once more, bounded so a refresh fails within seconds rather than
                # minutes and the page shows its last data as stale (see docs/aws.md).
                config=athena_client_config(),
                s3_config=athena_client_config(),
                retry_config=RetryConfig(
                    exceptions=ATHENA_THROTTLING, attempt=2, multiplier=1, max_delay=4
                ),
            )
        return self._conn

    def run(
        self, sql: str, params: Sequence[object] = (), *, scope: Scope | None = None
    ) -> pd.DataFrame:
        """``scope`` is not needed: the SQL's own partition predicates prune through the
        tables' partition projection."""
        del scope
        started = time.perf_counter()
        try:
            cursor = self._connection().cursor()
            cursor.execute(
                sql,
                [athena_literal(p) for p in params] or None,
                paramstyle="qmark",
                result_reuse_enable=True,
                result_reuse_minutes=self.reuse_minutes,
            )
            frame = cursor.as_pandas()
            # What Athena bills: bytes scanned (0 when the result was reused).
            self.last_bytes_read = cursor.data_scanned_in_bytes
            return frame
        except Exception as exc:
            raise QueryError(f"Athena: {_one_line(exc)}") from exc
        finally:
            self.last_seconds = time.perf_counter() - started


# Athena's throttling error codes that pyathena retries itself (its default list too).
ATHENA_THROTTLING = ("ThrottlingException", "TooManyRequestsException")


def athena_client_config():
    """botocore's retry configuration for the dashboard's Athena and S3 clients: adaptive
    mode retries throttling and transient errors (SlowDown, 503, TooManyRequestsException)
    with exponential backoff, up to ``max_attempts`` calls in all ("Retries", botocore's
    configuration guide), and the timeouts bound one call."""
    from botocore.config import Config

    return Config(
        retries={"mode": "adaptive", "max_attempts": 4}, connect_timeout=5, read_timeout=30
    )


def workgroup_enforces_results(workgroup: str, region: str, client=None) -> bool:
    """Whether the workgroup overrides client-side settings (EnforceWorkGroupConfiguration).
    A workgroup Athena will not describe counts as not enforcing: the client's location,
    if any, is then sent as before."""
    import boto3

    client = client or boto3.client("athena", region_name=region)
    try:
        described = client.get_work_group(WorkGroup=workgroup)["WorkGroup"]
    except Exception:  # noqa: BLE001 - e.g. no athena:GetWorkGroup: keep the client setting
        return False
    return bool(described.get("Configuration", {}).get("EnforceWorkGroupConfiguration"))


def athena_literal(value: object) -> str:
    """Athena's execution parameters are SQL literals: quote text, pass numbers as is."""
    if isinstance(value, bool) or value is None:
        raise TypeError(f"unsupported query parameter: {value!r}")
    if isinstance(value, int | float):
        return repr(value)
    return _quote(str(value))


def make_engine(settings) -> QueryEngine:
    """The engine the settings ask for: DuckDB over the local lake, or Athena."""
    if settings.mode == "aws":
        return AthenaEngine(
            workgroup=settings.athena_workgroup,
            database=settings.athena_database,
            region=settings.region,
            output=settings.athena_output,
        )
    return DuckDBEngine(settings.lake)
