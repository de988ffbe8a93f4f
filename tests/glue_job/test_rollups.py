"""Hour and day rollups: exact, whatever the range, the lateness or the replays.

A lake is built by the real per-batch function over three days of events: hours sealed in
order, a day sealed, late events into sealed hours and days, a replay of records already
read (dedup drops them), a replayed batch id (skipped), and compaction of every table,
rollups included. Then:

- the rollups equal the minute partials grouped by hour and day, for every period below
  each commit's marks;
- hypothesis draws ranges (minute-aligned or not, open or not, any trend bucket) and every
  KPI query answers the same from rollups (a ``Snapshot`` with its marks) as from minute
  partials alone (the bare batch id), at every committed batch.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from helpers import event, raw_rows, windows_within
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend.queries import Filters, Window, run_query
from backend.ranges import Snapshot, compose
from glue_job.batch import BatchProcessor
from glue_job.lake import ParquetLake
from glue_job.schemas import RAW_SCHEMA
from glue_job.tables import ROLLUPS, TABLES

pytestmark = pytest.mark.glue  # runs on Glue 5.0's runtime too (Makefile: test)

DAY0 = (datetime.now(UTC) - timedelta(days=4)).replace(hour=0, minute=0, second=0, microsecond=0)
OPERATORS = ("Movistar", "Orange", "Vodafone")
POSTAL_CODES = ("08001", "28001", None)


def at(n: int, moment: datetime, **fields) -> str:
    return event(
        event_id=f"e{n}",
        event_time=moment.isoformat(),
        operator=OPERATORS[n % 3],
        postal_code=POSTAL_CODES[n % 3],
        status=n % 4,
        signal_dbm=-60.0 - (n * 7) % 50,
        precision_m=3.0 + (n * 5) % 40,
        **fields,
    )


def spread(first: int, since: datetime, hours: int, per_hour: int = 3) -> list[str]:
    """``per_hour`` events in each of ``hours`` hours from ``since``, at uneven minutes."""
    out = []
    for h in range(hours):
        for k in range(per_hour):
            n = first + h * per_hour + k
            out.append(at(n, since + timedelta(hours=h, minutes=(n * 17) % 60)))
    return out


DAY1, DAY2 = DAY0 + timedelta(days=1), DAY0 + timedelta(days=2)
BATCHES = [
    spread(0, DAY0, 20),  # day 0 up to 20:00: hours sealed, no day yet
    spread(100, DAY0 + timedelta(hours=20), 10),  # into day 1: day 0 sealed
    # Late events into a sealed hour of a sealed day and of the open day, and a replay
    # of records batch 0 already read.
    [
        at(200, DAY0 + timedelta(hours=3, minutes=7)),
        at(201, DAY1 + timedelta(minutes=59)),
        *spread(0, DAY0, 2),
        *spread(300, DAY1 + timedelta(hours=6), 14),
    ],
    spread(400, DAY1 + timedelta(hours=20), 20),  # into day 2: day 1 sealed
    [
        at(500, DAY0 + timedelta(hours=23, minutes=59)),
        at(501, DAY2 + timedelta(hours=1)),
        *spread(600, DAY2 + timedelta(hours=2), 3),
    ],
]


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("rollups") / "lake"
    processor = BatchProcessor(
        spark, ParquetLake(spark, str(root)), compact_after=2, log=lambda _m: None
    )
    offset = 0
    for batch_id, payloads in enumerate(BATCHES):
        rows = raw_rows(payloads, start=offset)
        offset += len(rows)
        frame = spark.createDataFrame(rows, RAW_SCHEMA)
        processor.process_batch(frame, batch_id)
        if batch_id == 2:  # a replayed batch id is skipped: it committed
            assert processor.process_batch(frame, batch_id) is None
    return root


@pytest.fixture(scope="module")
def snapshots(engine) -> list[Snapshot]:
    ops = engine.run(
        "SELECT batch_id, rolled_hours_until FROM ops "
        "WHERE (SELECT max(batch_id) FROM ops_files) BETWEEN commit_id AND visible_through "
        "ORDER BY batch_id"
    )
    assert list(ops["batch_id"]) == list(range(len(BATCHES)))
    marks = pd.to_datetime(ops["rolled_hours_until"], utc=True)
    return [
        Snapshot(int(batch), mark.to_pydatetime())
        for batch, mark in zip(ops["batch_id"], marks, strict=True)
    ]


def test_the_marks_advance_with_the_events(snapshots) -> None:
    # Batch 0's newest event is on day 0 before 20:00; batch 4 holds late events only.
    marks = [s.hours_until for s in snapshots]
    assert marks == sorted(marks)
    assert marks[0] < DAY0 + timedelta(hours=20)
    assert snapshots[1].days_until == DAY1
    assert snapshots[-1].days_until == DAY2
    assert all(m == m.replace(minute=0, second=0, microsecond=0) for m in marks)


@pytest.mark.parametrize("minute_table", sorted(ROLLUPS))
def test_rollups_are_the_minute_partials_summed(engine, snapshots, minute_table) -> None:
    keys = [k for k in TABLES[minute_table].keys if k != "minute"]
    sums = [n for n, kind in TABLES[minute_table].columns if kind in ("long", "double")]
    sums = [n for n in sums if n not in ("commit_id", "signal_min", "signal_max")]
    for snapshot in snapshots:
        visible = f"{int(snapshot)} BETWEEN commit_id AND visible_through"
        for grain, until in (("hour", snapshot.hours_until), ("day", snapshot.days_until)):
            rollup = ROLLUPS[minute_table][grain].name
            cut = until.strftime("%Y-%m-%d %H:%M:%S")
            minute = engine.run(
                f"SELECT date_trunc('{grain}', minute) AS period, {', '.join(keys)}, "
                + ", ".join(f"sum({n}) AS {n}" for n in sums)
                + f", min(minute) AS minute_min, max(minute) AS minute_max FROM {minute_table} "
                f"WHERE {visible} AND minute < TIMESTAMP '{cut}' GROUP BY ALL"
            )
            rolled = engine.run(
                f"SELECT {grain} AS period, {', '.join(keys)}, "
                + ", ".join(f"sum({n}) AS {n}" for n in sums)
                + f", min(minute_min) AS minute_min, max(minute_max) AS minute_max "
                f"FROM {rollup} WHERE {visible} GROUP BY ALL"
            )
            order = ["period", *keys]
            pd.testing.assert_frame_equal(
                minute.sort_values(order, na_position="first").reset_index(drop=True),
                rolled.sort_values(order, na_position="first").reset_index(drop=True),
                check_dtype=False,
                obj=f"{rollup} at batch {int(snapshot)}",
            )


def test_late_events_and_replays_were_rolled_up(engine, snapshots) -> None:
    # The late event into day 0's 03:00 hour (batch 2) is in the hour and day rollups.
    last = snapshots[-1]
    visible = f"{int(last)} BETWEEN commit_id AND visible_through"
    hour = engine.run(
        f"SELECT sum(events) AS n FROM gold_operator_hour WHERE {visible} "
        f"AND hour = TIMESTAMP '{(DAY0 + timedelta(hours=3)):%Y-%m-%d %H:%M:%S}'"
    )
    assert int(hour.n.iloc[0]) == 3 + 1  # batch 0's three, the late one; the replay dropped
    day = engine.run(
        f"SELECT sum(events) AS n FROM gold_operator_day WHERE {visible} "
        f"AND day = TIMESTAMP '{DAY0:%Y-%m-%d %H:%M:%S}'"
    )
    assert int(day.n.iloc[0]) == 20 * 3 + 4 * 3 + 2  # 20:00-23:59 from batch 1, two late
    # Compaction folded rollup partitions too.
    folded = engine.run("SELECT DISTINCT table_name FROM compactions")
    assert set(folded.table_name) & {t.name for g in ROLLUPS.values() for t in g.values()}


# --- every KPI the same from rollups as from minutes -----------------------------------

SPAN_START, SPAN_END = DAY0 - timedelta(hours=2), DAY0 + timedelta(days=3, hours=2)
WINDOWS = windows_within(SPAN_START, SPAN_END)


def answers(engine, batch: int, window: Window, unit: str, step: int) -> dict[str, pd.DataFrame]:
    """Every gold query over ``window`` at snapshot ``batch``, rows in a stable order."""
    filters = Filters(operators=("Orange", "Vodafone"))
    both = {"batch": batch, **window.rows_params(batch)}
    trend = {"batch": batch, "unit": unit, "step": step, **window.rows_params(batch, unit)}
    out = {
        "kpi_choices": run_query(engine, "kpi_choices", **both),
        "map_postal_codes": run_query(engine, "map_postal_codes", out_of_service=1, **both),
        "map_postal_breakdown": run_query(
            engine, "map_postal_breakdown", postal_code="08001", **both
        ),
        "map_postal_trend": run_query(engine, "map_postal_trend", postal_code="28001", **trend),
        "headline": run_query(
            engine,
            "headline",
            **both,
            **Window(window.since - timedelta(hours=5), window.since).rows_params(
                batch, prefix="previous_"
            ),
        ),
    }
    for name in ("kpi_signal", "kpi_precision", "kpi_signal_bands", "kpi_status"):
        for label, chosen in (("all", Filters()), ("some", filters)):
            out[f"{name} {label}"] = run_query(engine, name, **both, **chosen.params())
    postal = Filters(postal_codes=("08001", "(none)"))
    out["kpi_signal_postal"] = run_query(engine, "kpi_signal_postal", **both, **postal.params())
    out["operator_trend"] = run_query(engine, "operator_trend", **trend, **Filters().params())
    out["operator_trend_postal"] = run_query(
        engine, "operator_trend_postal", **trend, **postal.params()
    )
    return {
        name: frame.sort_values(list(frame.columns)).reset_index(drop=True)
        for name, frame in out.items()
    }


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    window=WINDOWS,
    bucket=st.sampled_from([("minute", 1), ("minute", 5), ("hour", 1), ("day", 1)]),
)
def test_every_kpi_is_the_same_from_rollups_as_from_minutes(
    engine, every_file_engine, snapshots, window, bucket
) -> None:
    # The minute-level answer reads every file: the engine's own file lists (the partitions
    # of each range's parts, backend.engine) may not change a number either.
    unit, step = bucket
    for snapshot in (snapshots[-1], snapshots[2]):
        rolled = answers(engine, snapshot, window, unit, step)
        minutes = answers(every_file_engine, int(snapshot), window, unit, step)
        for name, answer in rolled.items():
            got, expected = answer, minutes[name]
            if name == "map_postal_codes":
                got, expected = without_periods(answer, expected)
            pd.testing.assert_frame_equal(
                got, expected, check_dtype=False, rtol=1e-9, obj=f"{name} {window}"
            )


PERIODS = ["periods_from", "periods_until"]


def without_periods(rolled: pd.DataFrame, minutes: pd.DataFrame):
    """The map's postal codes without their periods, once those are checked: from rollups
    they are the minutes' own span rounded out to whole hours or days, never narrower and
    at most a day wider at each end (``backend.map_data.likely_bucket``)."""
    assert list(rolled["postal_code"]) == list(minutes["postal_code"])
    day = pd.Timedelta(days=1)
    first, last = (pd.to_datetime(f[PERIODS[0]]) for f in (rolled, minutes))
    assert ((first <= last) & (last - first < day)).all()
    first, last = (pd.to_datetime(f[PERIODS[1]]) for f in (minutes, rolled))
    assert ((first <= last) & (last - first < day)).all()
    return rolled.drop(columns=PERIODS), minutes.drop(columns=PERIODS)


def test_ranges_do_use_the_rollups(snapshots) -> None:
    # Not a vacuous equality: a long range is mostly read from day and hour rollups.
    last = snapshots[-1]
    parts = compose(SPAN_START, SPAN_END, last)
    assert parts.days_since == DAY0
    assert parts.days_until == DAY2
    assert parts.rolled_since == SPAN_START
    assert parts.rolled_until == last.hours_until
    assert snapshots[-1].hours_until == snapshots[-2].hours_until
