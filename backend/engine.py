"""Query engines (catalog + SQL layer): ``run(sql, params) -> pandas.DataFrame``.

``DuckDBEngine`` serves the local lake with views over the same Parquet that
Athena reads in AWS; the views have the catalog's table names, so one SQL text
runs on both.
"""

from __future__ import annotations

import glob
import json
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import duckdb
import pandas as pd

from backend.catalog import current_views
from backend.errors import QueryError
from glue_job.tables import COMMIT_DIR, TABLES, Table

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
    name: str

    def run(self, sql: str, params: Sequence[object] = ()) -> pd.DataFrame: ...


class DuckDBEngine:
    """Local SQL over ``<lake>/…`` Parquet, counting only what the files hold right now."""

    name = "duckdb"

    def __init__(self, lake_root: str | Path, *, measure_io: bool = False) -> None:
        """``measure_io`` profiles every query to fill ``last_bytes_read`` (a few hundred
        microseconds a query: benchmarks turn it on, the dashboard leaves it off)."""
        self.lake_root = str(lake_root)
        self.measure_io = measure_io
        self.last_bytes_read: int | None = None
        self._con = duckdb.connect(":memory:")
        self._con.execute("SET TimeZone = 'UTC'")
        self._lock = threading.Lock()
        self._live: set[str] = set()  # tables whose view reads files (not the empty stand-in)
        self._stand_ins: set[str] = set()
        self._current = False  # the views of current rows over compacted tables
        self.last_seconds = 0.0

    def _refresh_views(self) -> None:
        with self._lock:
            for table in TABLES.values():
                if table.name in self._live:
                    continue
                # The view's own pattern: a writer's _temporary files must not count.
                has_files = next(glob.iglob(table.file_glob(self.lake_root)), None)
                if has_files is not None:
                    self._con.execute(_parquet_view(table, self.lake_root))
                    self._live.add(table.name)
                elif table.name not in self._stand_ins:
                    self._con.execute(_empty_view(table))
                    self._stand_ins.add(table.name)
            if not self._current:
                for sql in current_views().values():
                    self._con.execute(sql)
                self._current = True

    def run(self, sql: str, params: Sequence[object] = ()) -> pd.DataFrame:
        started = time.perf_counter()
        try:
            self._refresh_views()
            cursor = self._con.cursor()
            try:
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
        except duckdb.Error as exc:
            raise QueryError(_one_line(exc)) from exc
        finally:
            self.last_seconds = time.perf_counter() - started


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _parquet_view(table: Table, root: str) -> str:
    """The table's files. The commit directory level repeats ``commit_id`` and is dropped."""
    levels = [*table.partition_types, (COMMIT_DIR, "long")]
    hive_types = ", ".join(
        f"{_quote(name)}: {_quote(_DUCKDB_TYPES[kind])}" for name, kind in levels
    )
    return (
        f"CREATE OR REPLACE VIEW {table.files_name} AS SELECT * EXCLUDE ({COMMIT_DIR}) "
        f"FROM read_parquet({_quote(table.file_glob(root))}, hive_partitioning = true, "
        f"hive_types = {{{hive_types}}})"
    )


def _empty_view(table: Table) -> str:
    columns = ", ".join(
        f"CAST(NULL AS {_DUCKDB_TYPES[kind]}) AS {name}"
        for name, kind in (*table.columns, *table.partition_types)
    )
    return f"CREATE OR REPLACE VIEW {table.files_name} AS SELECT {columns} WHERE false"


def _one_line(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text[:300]


# The most characters Athena takes in one execution parameter (StartQueryExecution's
# ExecutionParameters: "Length Constraints: Minimum length of 1. Maximum length of 1024").
ATHENA_PARAMETER_LIMIT = 1024


class AthenaEngine:
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

            if self.enforced is None:
                self.enforced = workgroup_enforces_results(self.workgroup, self.region)
            self._conn = self._connect(
                work_group=self.workgroup,
                schema_name=self.database,
                region_name=self.region,
                # "" rather than None: pyathena then also skips AWS_ATHENA_S3_STAGING_DIR.
                s3_staging_dir="" if self.enforced else self.output,
                cursor_class=PandasCursor,
            )
        return self._conn

    def run(self, sql: str, params: Sequence[object] = ()) -> pd.DataFrame:
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
