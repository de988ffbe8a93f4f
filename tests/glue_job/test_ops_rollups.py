"""``_ops``'s hour and day rollups: the Pipeline Health page's numbers, whatever the range.

The real per-batch function runs 16 batches under a fixed clock, over two and a half
days: several batches in one hour, empty hours, a seven-hour gap, midnights crossed, a
failed attempt retried in place later, quarantined records, and compaction of every table
(the rollups and ``_ops`` included). Then:

- each commit row's ``ops_hours_until`` is its start less the grace, floored to the hour,
  never moving back;
- hypothesis draws windows and bucket units, and the window totals, the bucketed batch
  trend and the quarantine reasons answer the same from the rollups (a ``Snapshot`` with
  its ``_ops`` mark) as from the raw commit rows and quarantine alone (the bare batch id,
  every file read), at the last batch and at one in the middle;
- a long window really is read from day and hour rollups.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from helpers import event, windows_within
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend import health_data as health
from backend.ranges import Snapshot, compose
from glue_job.batch import BatchProcessor
from glue_job.lake import ParquetLake
from glue_job.rollups import GRACE, floor_hour
from glue_job.schemas import RAW_SCHEMA

pytestmark = pytest.mark.glue  # runs on Glue 5.0's runtime too (Makefile: test)

DAY0 = (datetime.now(UTC) - timedelta(days=4)).replace(hour=0, minute=0, second=0, microsecond=0)
DAY1, DAY2 = DAY0 + timedelta(days=1), DAY0 + timedelta(days=2)
STARTS = [
    DAY0 + timedelta(minutes=10),
    DAY0 + timedelta(minutes=40),
    DAY0 + timedelta(minutes=41, seconds=3, microseconds=912_345),
    DAY0 + timedelta(hours=1, minutes=30),
    DAY0 + timedelta(hours=3, minutes=5),
    DAY0 + timedelta(hours=3, minutes=20),
    DAY0 + timedelta(hours=5, minutes=59),
    DAY0 + timedelta(hours=6, minutes=6),  # seals hour 5; its first attempt fails (below)
    DAY0 + timedelta(hours=23, minutes=50),
    DAY1 + timedelta(minutes=2),
    DAY1 + timedelta(minutes=20),  # seals day 0
    DAY1 + timedelta(hours=13),
    DAY2 + timedelta(hours=2),  # seals day 1, after a gap
    DAY2 + timedelta(hours=2, minutes=1),
    DAY2 + timedelta(hours=2, minutes=30),
    DAY2 + timedelta(hours=4),
]
FAILING = 7
RETRIED_AT = timedelta(minutes=9)  # the retry starts this much later, sealing the same


def payloads(n: int, start: datetime) -> list[str]:
    """1-3 valid events; every third batch a record that is not JSON, and every fourth one
    that fails for two reasons."""
    out = [
        event(
            event_id=f"b{n}-{k}",
            event_time=(start - timedelta(seconds=30 + k)).isoformat(),
            signal_dbm=-60.0 - (n * 7 + k) % 40,
        )
        for k in range(1 + n % 3)
    ]
    if n % 3 == 0:
        out.append("not json")
    if n % 4 == 1:
        late = (start - timedelta(seconds=30)).isoformat()
        out.append(event(event_id=f"bad{n}", event_time=late, operator=..., signal_dbm=5.0))
    return out


def quarantined(n: int) -> int:
    return (n % 3 == 0) + (n % 4 == 1)


def rows_of(n: int, start: datetime) -> list[tuple]:
    arrival = start - timedelta(seconds=1 + n % 4)
    return [
        (
            text.encode(),
            "telcopulse-events",
            "shardId-0",
            str(49_000_000 + 10 * n + k),
            "pk",
            arrival,
        )
        for k, text in enumerate(payloads(n, start))
    ]


class FailOnce:
    """Fails the first write of the failing batch's commit row, as an S3 error would."""

    def __init__(self, lake: ParquetLake) -> None:
        self.lake, self.failed = lake, False
        self.write = lake.write

    def __call__(self, table, frame, batch_id):
        if table == "ops" and batch_id == FAILING and not self.failed:
            self.failed = True
            raise OSError("S3 said no")
        return self.write(table, frame, batch_id)


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ops_rollups") / "lake"
    clock: list[datetime] = []
    for n, start in enumerate(STARTS):
        if n == FAILING:  # the failed attempt asks for its start and end
            clock += [start, start + timedelta(seconds=0.1)]
        begun = start + RETRIED_AT if n == FAILING else start
        clock += [begun, begun + timedelta(seconds=0.5 + n % 3)]
    ticks = iter(clock)
    lake = ParquetLake(spark, str(root))
    lake.write = FailOnce(lake)
    processor = BatchProcessor(
        spark, lake, compact_after=2, clock=lambda: next(ticks), log=lambda _m: None
    )
    for n, start in enumerate(STARTS):
        frame = spark.createDataFrame(rows_of(n, start), RAW_SCHEMA)
        if n == FAILING:
            with pytest.raises(OSError, match="S3 said no"):
                processor.process_batch(frame, n)
        processor.process_batch(frame, n)
    assert next(ticks, None) is None
    return root


@pytest.fixture(scope="module")
def snapshots(engine) -> list[Snapshot]:
    ops = engine.run(
        "SELECT batch_id, rolled_hours_until, ops_hours_until FROM ops "
        "WHERE (SELECT max(batch_id) FROM ops_files) BETWEEN commit_id AND visible_through "
        "ORDER BY batch_id"
    )
    assert list(ops["batch_id"]) == list(range(len(STARTS)))
    gold = pd.to_datetime(ops["rolled_hours_until"], utc=True)
    marks = pd.to_datetime(ops["ops_hours_until"], utc=True)
    return [
        Snapshot(int(b), g.to_pydatetime(), m.to_pydatetime())
        for b, g, m in zip(ops["batch_id"], gold, marks, strict=True)
    ]


def test_the_mark_follows_the_batch_starts(snapshots) -> None:
    starts = list(STARTS)
    starts[FAILING] += RETRIED_AT
    expected, mark = [], None
    for start in starts:
        candidate = floor_hour(start - GRACE)
        mark = candidate if mark is None or candidate > mark else mark
        expected.append(mark)
    assert [s.ops_hours_until for s in snapshots] == expected


def test_rollups_hold_every_sealed_batch_once(engine, snapshots) -> None:
    last = snapshots[-1]
    rolled = engine.run(
        "SELECT sum(batches) AS batches, sum(records) AS records, "
        "sum(quarantine_table_rows) AS quarantined, max(batch_id_max) AS last FROM ops_hour "
        f"WHERE {int(last)} BETWEEN commit_id AND visible_through"
    ).iloc[0]
    sealed = [n for n, s in enumerate(STARTS) if s < last.ops_hours_until]
    assert rolled["batches"] == len(sealed)
    assert rolled["records"] == sum(len(payloads(n, STARTS[n])) for n in sealed)
    assert rolled["quarantined"] == sum(quarantined(n) for n in sealed)
    assert rolled["last"] == sealed[-1]
    days = engine.run(
        "SELECT day, batches FROM ops_day "
        f"WHERE {int(last)} BETWEEN commit_id AND visible_through ORDER BY day"
    )
    assert list(pd.to_datetime(days["day"], utc=True)) == [DAY0, DAY1]
    assert list(days["batches"]) == [9, 3]
    reasons = engine.run(
        "SELECT reason, sum(records) AS records FROM quarantine_hour "
        f"WHERE {int(last)} BETWEEN commit_id AND visible_through GROUP BY reason ORDER BY reason"
    )
    assert dict(zip(reasons["reason"], reasons["records"], strict=True)) == {
        "malformed_json": sum(n % 3 == 0 for n in sealed),
        "missing_operator": sum(n % 4 == 1 for n in sealed),
        "out_of_range_signal_dbm": sum(n % 4 == 1 for n in sealed),
    }


SPAN_START, SPAN_END = DAY0 - timedelta(hours=2), DAY2 + timedelta(hours=6)
WINDOWS = windows_within(SPAN_START, SPAN_END)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(window=WINDOWS, unit=st.sampled_from(["minute", "hour", "day"]))
def test_health_is_the_same_from_rollups_as_from_commit_rows(
    engine, every_file_engine, snapshots, window, unit
) -> None:
    for snapshot in (snapshots[-1], snapshots[11]):
        rolled = health.query_window_totals(engine, snapshot, window)
        raw = health.query_window_totals(every_file_engine, int(snapshot), window)
        assert _close(rolled, raw), (window, rolled, raw)
        pd.testing.assert_frame_equal(
            health.query_quarantine_reasons(engine, snapshot, window, unit),
            health.query_quarantine_reasons(every_file_engine, int(snapshot), window, unit),
            obj=f"{unit} reasons over {window}",
        )
        pd.testing.assert_frame_equal(
            health.query_batch_trend(engine, snapshot, window, unit),
            health.query_batch_trend(every_file_engine, int(snapshot), window, unit),
            check_dtype=False,
            rtol=1e-9,
            obj=f"{unit} trend over {window}",
        )


def _close(a: health.WindowTotals, b: health.WindowTotals) -> bool:
    for name in a.__dataclass_fields__:
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, float) and isinstance(y, float):
            if x != pytest.approx(y, rel=1e-9):
                return False
        elif x != y:
            return False
    return True


def test_long_windows_do_use_the_rollups(snapshots) -> None:
    # Not a vacuous equality: the whole span is mostly days and hours of rollups.
    last = snapshots[-1].ops
    parts = compose(SPAN_START, SPAN_END, last)
    assert (parts.days_since, parts.days_until) == (DAY0, DAY2)
    assert parts.rolled_until == last.hours_until == DAY2 + timedelta(hours=3)
