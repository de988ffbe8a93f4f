"""Query engines: AthenaEngine's calls into pyathena, and through pyathena into Athena (moto).

A fake ``connect`` shows what the engine asks of pyathena, and the installed pyathena's own
signatures confirm those keyword names exist. moto then takes real pyathena calls: it records
the StartQueryExecution request (query text, workgroup, database, execution parameters) but
never writes a result file, so the run ends in a one-line QueryError there, which is also
what a user sees when Athena fails.
"""

from __future__ import annotations

import inspect
import itertools
import time
from contextlib import suppress
from pathlib import Path

import boto3
import pandas as pd
import pytest
from helpers import EveryFileEngine
from moto import mock_aws
from pyathena.connection import Connection
from pyathena.pandas.cursor import PandasCursor

from backend.engine import AthenaEngine, DuckDBEngine, QueryError, athena_literal, make_engine
from backend.queries import (
    FILTER_CHUNKS,
    Filters,
    TooManyChoices,
    Window,
    bind,
    load_sql,
    run_kpi,
)
from backend.settings import load_settings

REGION = "eu-west-1"


class FakeCursor:
    data_scanned_in_bytes = 4_096  # what pyathena's cursor reports after a query

    def __init__(self, calls: list, result: pd.DataFrame) -> None:
        self.calls = calls
        self.result = result

    def execute(self, operation, parameters=None, **kwargs):
        self.calls.append((operation, parameters, kwargs))
        return self

    def as_pandas(self) -> pd.DataFrame:
        return self.result


class FakeConnect:
    """Stands in for ``pyathena.connect``: records the connection and every execute."""

    def __init__(self, result: pd.DataFrame) -> None:
        self.result = result
        self.kwargs: dict = {}
        self.calls: list = []

    def __call__(self, **kwargs):
        self.kwargs = kwargs
        return self

    def cursor(self) -> FakeCursor:
        return FakeCursor(self.calls, self.result)


def test_athena_engine_uses_the_workgroup_result_reuse_and_qmark_literals() -> None:
    result = pd.DataFrame({"batch_id": [7]})
    connect = FakeConnect(result)
    engine = AthenaEngine(
        workgroup="telcopulse",
        database="telcopulse_db",
        region=REGION,
        output="s3://results/results/",
        reuse_minutes=5,
        connect=connect,
        enforced=False,
    )
    frame = engine.run("SELECT * FROM ops WHERE batch_id <= ? AND x = ?", [3, "O'Brien"])

    assert frame is result
    assert engine.last_bytes_read == 4_096
    assert connect.kwargs["work_group"] == "telcopulse"
    assert connect.kwargs["schema_name"] == "telcopulse_db"
    assert connect.kwargs["region_name"] == REGION
    assert connect.kwargs["s3_staging_dir"] == "s3://results/results/"
    assert connect.kwargs["cursor_class"] is PandasCursor
    ((sql, parameters, options),) = connect.calls
    assert sql == "SELECT * FROM ops WHERE batch_id <= ? AND x = ?"  # never formatted
    assert parameters == ["3", "'O''Brien'"]
    assert options == {
        "paramstyle": "qmark",
        "result_reuse_enable": True,
        "result_reuse_minutes": 5,
    }
    # The names are the installed pyathena's, not guesses.
    assert set(connect.kwargs) <= set(inspect.signature(Connection.__init__).parameters)
    assert set(options) <= set(inspect.signature(PandasCursor.execute).parameters)
    assert isinstance(inspect.getattr_static(PandasCursor, "data_scanned_in_bytes"), property)


def test_a_query_without_parameters_sends_none_and_a_failure_is_one_line() -> None:
    class Failing(FakeConnect):
        def cursor(self):
            raise RuntimeError("boom\nsecond line")

    connect = FakeConnect(pd.DataFrame())
    engine = AthenaEngine(
        workgroup="w", database="d", region=REGION, connect=connect, enforced=True
    )
    engine.run("SELECT 1")
    assert connect.calls[0][1] is None

    failing = AthenaEngine(
        workgroup="w", database="d", region=REGION, connect=Failing(None), enforced=True
    )
    with pytest.raises(QueryError, match=r"^Athena: boom second line$"):
        failing.run("SELECT 1")


def test_literals_quote_text_and_reject_what_athena_cannot_bind() -> None:
    assert athena_literal(2) == "2"
    assert athena_literal(-1.5) == "-1.5"
    assert athena_literal("2026-01-01 00:00:00.000000") == "'2026-01-01 00:00:00.000000'"
    for value in (None, True):
        with pytest.raises(TypeError):
            athena_literal(value)


def test_aws_settings_pick_athena(monkeypatch) -> None:
    monkeypatch.setattr("pyathena.connect", FakeConnect(pd.DataFrame()))
    settings = load_settings(
        mode="aws",
        lake_uri="s3://lake",
        athena_workgroup="telcopulse",
        athena_database="telcopulse",
        region=REGION,
    )
    assert isinstance(make_engine(settings), AthenaEngine)


@mock_aws
def test_kpi_query_reaches_athena_with_bound_parameters(monkeypatch) -> None:
    athena = moto_workgroup(monkeypatch, "s3://results/results/", enforced=False)
    boto3.client("s3", region_name=REGION).create_bucket(
        Bucket="results", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    engine = AthenaEngine(
        workgroup="telcopulse", database="telcopulse", region=REGION, output="s3://results/"
    )
    with pytest.raises(QueryError, match=r"^Athena: "):  # moto writes no result file
        run_kpi(engine, "kpi_signal", Window(), batch=41)

    (query_id,) = athena.list_query_executions(WorkGroup="telcopulse")["QueryExecutionIds"]
    execution = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
    text, values = bind(
        load_sql("kpi_signal"), {"batch": 41, **Window().rows_params(41), **Filters().params()}
    )
    assert execution["Query"] == text
    assert execution["WorkGroup"] == "telcopulse"
    assert execution["QueryExecutionContext"]["Database"] == "telcopulse"
    assert execution["ExecutionParameters"] == [athena_literal(v) for v in values]
    assert execution["ExecutionParameters"][: 2 * FILTER_CHUNKS] == ["''"] * 2 * FILTER_CHUNKS
    assert execution["ExecutionParameters"][-1] == "41"  # the batch, in the outer WHERE


def moto_workgroup(monkeypatch, output: str, *, enforced: bool):
    """The "telcopulse" workgroup in moto's Athena, results going to ``output``."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    athena = boto3.client("athena", region_name=REGION)
    athena.create_work_group(
        Name="telcopulse",
        Configuration={
            "ResultConfiguration": {"OutputLocation": output},
            "EnforceWorkGroupConfiguration": enforced,
        },
    )
    return athena


@mock_aws
@pytest.mark.parametrize("enforced", [True, False])
def test_results_go_where_an_enforcing_workgroup_says_so_result_reuse_stays_on(
    monkeypatch, enforced
) -> None:
    monkeypatch.setenv("AWS_ATHENA_S3_STAGING_DIR", "s3://from-the-environment/")
    athena = moto_workgroup(monkeypatch, "s3://workgroup-results/", enforced=enforced)
    engine = AthenaEngine(
        workgroup="telcopulse", database="telcopulse", region=REGION, output="s3://client/"
    )
    with suppress(QueryError):  # moto writes no result file where the client says
        engine.run("SELECT 1")
    assert engine.enforced is enforced
    (query_id,) = athena.list_query_executions(WorkGroup="telcopulse")["QueryExecutionIds"]
    execution = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
    sent = execution.get("ResultConfiguration") or {}
    if enforced:
        assert "OutputLocation" not in sent  # no override: Athena may reuse results
    else:
        assert sent["OutputLocation"].startswith("s3://client/")


def test_hundreds_of_postal_codes_fit_athenas_parameter_limit(csv_lake) -> None:
    """Every postal code of the capture plus 400 that match nothing: the same counts as no
    filter, with each list in parameters Athena accepts (1,024 characters at most)."""
    engine = DuckDBEngine(csv_lake)
    everything = run_kpi(engine, "kpi_status", Window())
    codes = [str(c) for c in engine.run("SELECT DISTINCT postal_code FROM silver").postal_code]
    chosen = Filters(postal_codes=(*codes, "(none)", *(f"99{n:04d}" for n in range(400))))
    assert len(chosen.postal_codes) > 400
    params = chosen.params()
    assert [len(chunks) for chunks in params.values()] == [FILTER_CHUNKS, FILTER_CHUNKS]
    assert all(1 <= len(athena_literal(p)) <= 1024 for chunks in params.values() for p in chunks)
    assert "\n".join(chosen.postal_codes) == "".join(params["postal_codes"])
    filtered = run_kpi(engine, "kpi_status", Window(), filters=chosen)
    assert filtered.equals(everything)


def test_a_filter_too_long_for_a_query_says_so_in_one_line() -> None:
    too_many = Filters(postal_codes=tuple(f"{n:06d}" for n in range(2_000)))
    with pytest.raises(TooManyChoices, match=r"^2000 postal codes selected: .* select fewer$"):
        too_many.params()


def test_duckdb_engine_measures_the_bytes_a_query_reads(spark, tmp_path) -> None:
    from helpers import build_lake, event

    root = build_lake(spark, tmp_path / "lake", [[event(event_id=f"e{i}") for i in range(20)]])
    plain = DuckDBEngine(root)
    run_kpi(plain, "kpi_signal", Window())
    assert plain.last_bytes_read is None  # off unless asked for

    measured = DuckDBEngine(root, measure_io=True)
    signal = run_kpi(measured, "kpi_signal", Window())
    assert signal.signal_samples.tolist() == [20]
    gold_bytes = measured.last_bytes_read
    gold_files = sum(
        p.stat().st_size for p in (root / "gold" / "operator_minute").rglob("*.parquet")
    )
    assert gold_bytes > 0
    # What DuckDB reads of the files: their footers and the columns the query needs.
    assert gold_bytes <= gold_files + sum(
        p.stat().st_size for p in (root / "_ops").rglob("*.parquet")
    )


# --- File lists: a range reads only its own partitions ------------------------------------


def test_a_range_lists_only_the_files_of_its_partitions(csv_lake) -> None:
    from datetime import UTC, datetime, timedelta
    from glob import glob

    from backend.ranges import Scope
    from glue_job.tables import TABLES

    engine = DuckDBEngine(csv_lake)
    engine.run("SELECT 1")
    table = TABLES["gold_operator_minute"]
    every = sorted(glob(table.file_glob(str(csv_lake))))
    day_dir = sorted((csv_lake / table.path).glob("event_date=*"))[0]
    hours = sorted(int(p.name.split("=")[1]) for p in day_dir.glob("event_hour=*"))
    assert len(hours) > 2, "the capture spans hours"
    day = datetime.fromisoformat(day_dir.name.split("=")[1]).replace(tzinfo=UTC)
    hour = day + timedelta(hours=hours[1])
    # Half an hour inside one hour partition: that partition's files and no other.
    listed = engine._files_in(table, Scope(((hour, hour + timedelta(minutes=30)),)).minutes)
    assert listed == sorted(
        glob(str(day_dir / f"event_hour={hours[1]}" / "commit=*" / "*.parquet"))
    )
    assert 0 < len(listed) < len(every)
    # A range with no partition of its own still binds: one file, whose rows the SQL's own
    # partition predicates leave out.
    far = (day - timedelta(days=400), day - timedelta(days=399))
    assert len(engine._files_in(table, (far,))) == 1
    # Hour rollups go by day, day rollups by month.
    whole_day = Scope((), hours=((day, day + timedelta(days=1)),), days=((day, day),))
    rollup = TABLES["gold_operator_hour"]
    assert engine._files_in(rollup, whole_day.hours) == sorted(
        glob(rollup.file_glob(str(csv_lake)).replace("event_date=*", day_dir.name))
    )


def test_windowed_queries_read_the_same_rows_from_their_partitions(csv_lake, csv_batch) -> None:
    from datetime import timedelta

    from backend.queries import Window, load_sql, parameter_names, run_query

    engine, every_file = DuckDBEngine(csv_lake), EveryFileEngine(csv_lake)
    last = engine.run("SELECT max(batch_end) AS t FROM ops")["t"].iloc[0].to_pydatetime()
    extra = {
        "min_events": 1,
        "share": 0.0,
        "drop_db": 0.0,
        "unit": "hour",
        "reason": "BAD_JSON",
        "current_since": "2000-01-01 00:00:00.000000",
    }
    windows = [Window(), Window(last - timedelta(hours=1), last), Window(until=last)]
    for name in (
        "alert_outages",
        "alert_signal_drops",
        "health_batch_buckets",
        "health_batches",
        "health_totals",
        "health_quarantine_reasons",
        "health_quarantine_samples",
    ):
        wanted = set(parameter_names(load_sql(name)))
        for window in windows:
            # _ops's rollups compose the totals and the buckets (Snapshot.ops's marks).
            parts = window.rows_params(csv_batch.ops) if "rolled_since" in wanted else None
            params = {"batch": csv_batch, **(parts or window.params())}
            params |= {k: v for k, v in extra.items() if k in wanted}
            scoped = run_query(engine, name, **params)
            assert scoped.equals(run_query(every_file, name, **params)), (name, window)


def test_the_engine_moves_to_a_new_database_and_closes_the_old_after_its_last_query(
    csv_lake,
) -> None:
    """DuckDB gives back what a database kept only when it closes (``RECYCLE_SECONDS``): past
    ``recycle_seconds`` the next query opens a new database, with its own views, and answers
    the same; the old one closes once the queries still running on it end, not before."""
    import duckdb

    sql = (
        "SELECT operator, count(*) AS n, sum(events) AS events "
        "FROM gold_operator_minute GROUP BY operator ORDER BY operator"
    )
    engine = DuckDBEngine(csv_lake)
    first = engine.run(sql)
    assert not first.empty
    in_flight = engine._checkout()  # a query still running on the first database
    engine.recycle_seconds = 0
    pd.testing.assert_frame_equal(engine.run(sql), first)
    second = engine._db
    assert second is not in_flight
    assert in_flight.con.execute("SELECT 42").fetchone() == (42,)  # still open for it
    engine._checkin(in_flight)
    with pytest.raises(duckdb.ConnectionException):
        in_flight.con.execute("SELECT 42")
    pd.testing.assert_frame_equal(engine.run(sql), first)
    assert engine._db is not second
    with pytest.raises(duckdb.ConnectionException):  # nothing ran on it: closed at once
        second.con.execute("SELECT 42")


# --- Throttling: retried by configuration ---------------------------------------------------


@mock_aws
def test_a_throttled_athena_call_is_retried_by_botocore_not_by_hand(monkeypatch) -> None:
    """Athena answers TooManyRequestsException twice; botocore's retry configuration (on the
    client pyathena builds from the engine's settings) sends the call again until moto's
    Athena takes it. Injected on ``before-send``, inside botocore's retry loop (moto's own
    handler answers there too, so its list of executions counts every attempt)."""
    from botocore.awsrequest import AWSResponse

    moto_workgroup(monkeypatch, "s3://results/", enforced=True)
    attempts = []

    class Throttled:
        raw = None

        def stream(self, **_):
            yield b""

    def throttle(request, **_):
        attempts.append(request.url)
        if len(attempts) <= 2:
            body = b'{"__type": "TooManyRequestsException", "Message": "Rate exceeded"}'
            response = AWSResponse(request.url, 400, {}, Throttled())
            response._content = body
            return response
        return None

    def connect(**kwargs):
        from pyathena import connect as real_connect

        connection = real_connect(**kwargs)
        connection.client.meta.events.register_first(
            "before-send.athena.StartQueryExecution", throttle
        )
        return connection

    engine = AthenaEngine(
        workgroup="telcopulse", database="telcopulse", region=REGION, connect=connect
    )
    frame = engine.run("SELECT 1")  # moto's Athena answers with an empty result
    assert len(attempts) == 3  # two throttled, then through
    assert isinstance(frame, pd.DataFrame)


def test_athena_and_its_result_downloads_retry_throttling_by_configuration() -> None:
    connect = FakeConnect(pd.DataFrame())
    AthenaEngine(workgroup="w", database="d", region=REGION, connect=connect, enforced=True).run(
        "SELECT 1"
    )
    for client in ("config", "s3_config"):
        assert connect.kwargs[client].retries == {"mode": "adaptive", "max_attempts": 4}
    retry = connect.kwargs["retry_config"]
    assert set(retry.exceptions) == {"ThrottlingException", "TooManyRequestsException"}
    assert retry.attempt == 2


# --- A file compaction deletes while a query reads ------------------------------------------


def test_a_file_deleted_between_listing_and_reading_is_listed_again(
    csv_lake, csv_batch, tmp_path, monkeypatch
) -> None:
    """Compaction's garbage collection deleted a superseded file just after a query listed
    it (a soak at 2,000 events/s met this after 55 minutes): the query lists again and
    answers from the files that are there, instead of failing the page."""
    import shutil

    import backend.engine
    from backend.queries import run_query

    lake = tmp_path / "lake"
    shutil.copytree(csv_lake, lake)
    engine = DuckDBEngine(lake)
    params = {"batch": csv_batch, **Window().rows_params(csv_batch.ops)}
    expected = run_query(engine, "health_totals", **params)

    real_glob, listings = backend.engine.glob.glob, []

    def glob_then_collect(pattern, *args, **kwargs):
        """The listing, then a superseded copy of its first file deleted under the reader."""
        names = real_glob(pattern, *args, **kwargs)
        listings.append(pattern)
        if len(listings) == 1 and names:
            gone = Path(names[0]).parent.with_name("commit=0") / "superseded.parquet"
            gone.parent.mkdir(exist_ok=True)
            shutil.copy(names[0], gone)
            names = [*names, str(gone)]
            gone.unlink()
        return names

    monkeypatch.setattr(backend.engine.glob, "glob", glob_then_collect)
    assert run_query(engine, "health_totals", **params).equals(expected)
    assert len(listings) >= 2, "the first listing named a file that was gone; it listed again"


def test_a_file_that_stays_gone_fails_the_query_in_one_line(
    csv_lake, csv_batch, monkeypatch
) -> None:
    """A listing that keeps naming a missing file (not a compaction: something broke the
    lake) is tried LISTING_ATTEMPTS times, each after a longer pause (a compaction's sweep
    of superseded files ends meanwhile), then fails in one line naming the file."""
    import backend.engine
    from backend.queries import run_query

    real_glob, listings, when = backend.engine.glob.glob, [], []

    def glob_with_a_ghost(pattern, *args, **kwargs):
        listings.append(pattern)
        when.append(time.monotonic())
        return [*real_glob(pattern, *args, **kwargs), "/nonexistent/commit=1/ghost.parquet"]

    monkeypatch.setattr(backend.engine.glob, "glob", glob_with_a_ghost)
    engine = DuckDBEngine(csv_lake)
    with pytest.raises(QueryError, match=r"No files found .*ghost\.parquet") as failure:
        run_query(engine, "health_totals", batch=csv_batch, **Window().rows_params(csv_batch.ops))
    assert "\n" not in str(failure.value)
    tables = {pattern.split("/commit=")[0] for pattern in listings}
    assert len(listings) == backend.engine.LISTING_ATTEMPTS * len(tables)
    firsts = when[:: len(tables)]  # each attempt lists every table it reads, in order
    pauses = [later - earlier for earlier, later in itertools.pairwise(firsts)]
    assert len(pauses) == 3
    assert all(pause >= wait for pause, wait in zip(pauses, (0.1, 0.2, 0.4), strict=True)), pauses


def test_a_file_deleted_while_the_views_are_created_is_listed_again(
    csv_lake, csv_batch, monkeypatch
) -> None:
    """Creating a view lists and opens the table's files too (DuckDB binds it): a new
    engine whose view creation meets a file that just went lists again (a soak met this
    twice in an hour, each time in a new engine's first query)."""
    import backend.engine

    real_view, created = backend.engine._parquet_view, []

    def view_naming_a_gone_file(table, root):
        created.append(table.name)
        sql = real_view(table, root)
        if table.name == "ops" and created.count("ops") == 1:
            sql = sql.replace(f"'{table.file_glob(root)}'", "'/nonexistent/commit=1/gone.parquet'")
        return sql

    monkeypatch.setattr(backend.engine, "_parquet_view", view_naming_a_gone_file)
    from backend.queries import committed_batch

    assert committed_batch(DuckDBEngine(csv_lake)) == csv_batch
    assert created.count("ops") == 2  # refused once, then made


def _write_rows(root: Path, table_name: str, partition: str, rows: list[dict]) -> None:
    """Rows of a table's columns (the rest NULL) as one committed file of ``partition``."""
    import duckdb

    from backend.engine import _DUCKDB_TYPES
    from glue_job.tables import TABLES

    table = TABLES[table_name]
    directory = root / table.path / partition / "commit=1"
    directory.mkdir(parents=True)
    selects = [
        "SELECT "
        + ", ".join(
            f"CAST({duckdb_literal(row.get(name))} AS {_DUCKDB_TYPES[kind]}) AS {name}"
            for name, kind in table.columns
        )
        for row in rows
    ]
    duckdb.sql(
        f"COPY ({' UNION ALL '.join(selects)}) TO '{directory / 'part-0.parquet'}' (FORMAT parquet)"
    )


def duckdb_literal(value: object) -> str:
    return "NULL" if value is None else f"'{value}'"


def test_the_committed_batch_is_read_from_the_newest_ops_partition_alone(tmp_path) -> None:
    """A month of _ops is a partition a day: the newest batch started on the newest date,
    so the lookup every refresh makes lists that partition's files and no other."""
    from backend.queries import committed_batch
    from backend.ranges import NEWEST, Snapshot
    from glue_job.tables import TABLES

    for day, batches in (("2026-11-30", range(0, 40)), ("2026-12-01", range(40, 43))):
        rows = [{"batch_id": b, "batch_start": f"{day} 10:00:00"} for b in batches]
        _write_rows(tmp_path, "ops", f"batch_date={day}", rows)
    # An hour partition sorts by its hour, not its text: hour 10 is newer than hour 9.
    for hour in (9, 10):
        row = {"minute": f"2026-12-01 {hour:02d}:00:00", "operator": "A", "commit_id": 1}
        _write_rows(
            tmp_path, "gold_operator_minute", f"event_date=2026-12-01/event_hour={hour}", [row]
        )
    engine = DuckDBEngine(tmp_path)
    assert committed_batch(engine) == Snapshot(42)
    newest = engine._newest_files(TABLES["ops"])
    assert [Path(f).parts[-3] for f in newest] == ["batch_date=2026-12-01"]
    newest = engine._newest_files(TABLES["gold_operator_minute"])
    assert [Path(f).parts[-3] for f in newest] == ["event_hour=10"]
    # Read with the newest partition's list: only its three rows reach the query.
    counted = engine.run("SELECT count(*) AS n FROM ops_files", scope=NEWEST)
    assert counted["n"].iloc[0] == 3
    assert engine.run("SELECT count(*) AS n FROM ops_files")["n"].iloc[0] == 43
