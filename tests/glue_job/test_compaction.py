"""Compaction: the policy on its own, then folding real batches with every reader checked.

The expected numbers come from the events the tests send, counted in plain Python; the
lake is read through DuckDB exactly as the dashboard and `telcopulse kpi` read it.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from helpers import event, raw_rows

from backend.engine import DuckDBEngine
from backend.health_data import query_window_totals
from backend.queries import Window, committed_batch, run_kpi
from glue_job.batch import BatchProcessor
from glue_job.compaction import QUIET_BATCHES, CompactionPlan
from glue_job.lake import ParquetLake
from glue_job.schemas import RAW_SCHEMA
from glue_job.tables import COMPACTED, TABLES

pytestmark = pytest.mark.glue  # runs on Glue 5.0's runtime too (Makefile: test)

DAY = date(2026, 11, 30)
MIDDAY = datetime(2026, 11, 30, 12, 10, tzinfo=UTC)
GOLD_NOON = TABLES["gold_operator_minute"].partition_of(MIDDAY)  # event_date=…/event_hour=12
OPS_DAY = TABLES["ops"].partition_of(MIDDAY)  # batch_date=2026-11-30

# --- the plan ---------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_partition_is_due_once_it_holds_enough_batch_files():
    assert GOLD_NOON == "event_date=2026-11-30/event_hour=12"
    plan = CompactionPlan(compact_after=3)
    for commit in range(3):
        plan.wrote("gold_operator_minute", GOLD_NOON, commit)
        assert plan.due(commit, MIDDAY) == []  # the batch's own files never count
    plan.wrote("gold_operator_minute", GOLD_NOON, 3)
    assert plan.due(3, MIDDAY) == [("gold_operator_minute", GOLD_NOON)]

    plan.committed("gold_operator_minute", GOLD_NOON, 3)
    plan.wrote("gold_operator_minute", GOLD_NOON, 4)
    assert plan.due(4, MIDDAY) == []
    assert plan.partitions[("gold_operator_minute", GOLD_NOON)].commits == {3, 4}


def test_a_closed_partition_is_folded_once_no_batch_writes_to_it():
    plan = CompactionPlan(compact_after=100)
    for commit in (0, 1):
        plan.wrote("ops", OPS_DAY, commit)
        plan.wrote("gold_operator_minute", GOLD_NOON, commit)
    tomorrow = MIDDAY + timedelta(days=1)
    assert plan.due(QUIET_BATCHES + 1, tomorrow) == []  # still being written to recently
    assert plan.due(QUIET_BATCHES + 2, tomorrow) == [
        ("gold_operator_minute", GOLD_NOON),
        ("ops", OPS_DAY),
    ]
    # An hour later, gold's noon hour is closed; the day of _ops is not.
    one_pm = MIDDAY + timedelta(hours=1)
    assert plan.due(QUIET_BATCHES + 2, one_pm) == [("gold_operator_minute", GOLD_NOON)]
    assert plan.due(QUIET_BATCHES + 2, MIDDAY) == []  # the current partition is never closed


def test_superseded_files_wait_out_their_grace_period():
    clock = Clock()
    plan = CompactionPlan(compact_after=1, grace_seconds=60, clock=clock)
    plan.committed("quarantine", OPS_DAY.replace("batch_date", "ingest_date"), 5)
    assert plan.collectable() == []
    clock.now = 59.9
    assert plan.collectable() == []
    clock.now = 60
    (ripe,) = plan.collectable()
    assert (ripe.table, ripe.partition, ripe.commit) == (
        "quarantine",
        "ingest_date=2026-11-30",
        5,
    )
    assert plan.collectable() == []  # taken off the list


def test_restore_finds_what_is_current_and_what_is_garbage():
    plan = CompactionPlan()
    plan.restore("ops", OPS_DAY, since=4, commits=[1, 2, 4, 5, 9], last_commit=5)
    files = plan.partitions[("ops", OPS_DAY)]
    assert (files.since, files.commits, files.last_write) == (4, {4, 5}, 5)  # 9 is uncommitted
    assert [(g.table, g.commit) for g in plan.garbage] == [("ops", 4)]


# --- folding real batches ---------------------------------------------------------------

# Half past the previous hour: every event (up to two minutes before) falls in one hour.
NOW = (datetime.now(UTC) - timedelta(hours=1)).replace(minute=30, second=0, microsecond=0)
OPERATORS = ["Movistar", "Orange", "Vodafone"]


def batch_payloads(number: int) -> list[str]:
    """Six events in the same few minutes as every other batch (so folding merges rows),
    one duplicate of the previous batch, one bad record, and in batch 4 a late event."""
    payloads = []
    for i in range(6):
        payloads.append(
            event(
                event_id=f"b{number}-{i}",
                event_time=(NOW - timedelta(minutes=i % 3)).isoformat(),
                operator=OPERATORS[i % 3],
                signal_dbm=float(-70 - number - i),
                precision_m=float(number + i),
                status=(number + i) % 4,
                postal_code=f"0800{i % 2}",
            )
        )
    if number:
        payloads.append(event(event_id=f"b{number - 1}-0"))  # a duplicate: dropped
    payloads.append("{broken")
    if number == 4:
        late = (NOW - timedelta(days=1)).isoformat()
        payloads.append(event(event_id="late", event_time=late, signal_dbm=-100.0))
    return payloads


def expected_signal(batches: int) -> dict[str, tuple[float, int]]:
    """Average signal and readings per operator over the first `batches` batches' events."""
    sums: dict[str, list[float]] = {}
    for number in range(batches):
        for payload in batch_payloads(number):
            try:
                doc = json.loads(payload)
            except ValueError:
                continue
            if doc["event_id"].startswith("b") and int(doc["event_id"][1]) != number:
                continue  # the duplicate of an earlier batch
            sums.setdefault(doc["operator"], []).append(doc["signal_dbm"])
    return {op: (sum(v) / len(v), len(v)) for op, v in sums.items()}


def signal_kpi(engine, batch: int | None = None) -> dict[str, tuple[float, int]]:
    frame = run_kpi(engine, "kpi_signal", Window(), batch)
    return {
        r.operator: (pytest.approx(r.avg_signal_dbm), int(r.signal_samples))
        for r in frame.itertuples()
    }


def commit_dirs(lake: Path, table_path: str) -> list[str]:
    return sorted(p.name for p in (lake / table_path).rglob("commit=*"))


def run_batch(processor, spark, number: int) -> None:
    rows = raw_rows(batch_payloads(number), start=number * 100)
    processor.process_batch(spark.createDataFrame(rows, RAW_SCHEMA), number)


@pytest.fixture
def lake_root(tmp_path) -> Path:
    return tmp_path / "lake"


def test_folding_keeps_every_number_and_old_snapshots_until_the_grace_ends(spark, lake_root):
    lake = ParquetLake(spark, str(lake_root))
    processor = BatchProcessor(
        spark, lake, compact_after=3, compaction_grace_seconds=3600, log=lambda _m: None
    )
    engine = DuckDBEngine(lake_root)
    for number in range(4):
        run_batch(processor, spark, number)
        assert signal_kpi(engine) == expected_signal(number + 1)

    # Batch 3 folded today's partitions of gold, quarantine and _ops (3 older batch files each).
    folded = engine.run("SELECT table_name, rows_before, rows_after, commit_id FROM compactions")
    assert set(folded.table_name) == {
        "gold_operator_minute",
        "gold_postal_status_minute",
        "gold_cell_minute",
        "quarantine",
        "ops",
    }
    assert set(folded.commit_id) == {3}
    gold = folded.set_index("table_name").loc["gold_operator_minute"]
    assert gold.rows_after < gold.rows_before  # the same minutes and operators, merged
    ops = folded.set_index("table_name").loc["ops"]
    assert ops.rows_after == ops.rows_before == 3  # _ops keeps one row per batch

    # A reader still on batch 2's snapshot sees batch 2's numbers, not twice them.
    assert signal_kpi(engine, 2) == expected_signal(3)
    assert committed_batch(engine) == 3
    # The superseded files are still there (grace), and each row is counted once.
    assert commit_dirs(lake_root, "gold/operator_minute") == [f"commit={n}" for n in range(4)]
    totals = query_window_totals(engine, 3, Window())
    assert (totals.batches, totals.reconciled) == (4, True)
    batches = engine.run(
        "SELECT batch_id FROM ops WHERE ? BETWEEN commit_id AND visible_through", [3]
    )
    assert sorted(batches.batch_id) == [0, 1, 2, 3]


def test_garbage_goes_after_the_grace_and_late_events_stay_current(spark, lake_root):
    lake = ParquetLake(spark, str(lake_root))
    processor = BatchProcessor(
        spark, lake, compact_after=3, compaction_grace_seconds=0, log=lambda _m: None
    )
    engine = DuckDBEngine(lake_root)
    for number in range(6):
        run_batch(processor, spark, number)
        assert signal_kpi(engine) == expected_signal(number + 1)

    # Batch 4 deleted what batch 3's compaction superseded; 4 and 5 wrote their own files.
    hour = TABLES["gold_operator_minute"].partition_of(NOW)
    kept = sorted(p.name for p in (lake_root / "gold/operator_minute" / hour).iterdir())
    assert kept == ["commit=3", "commit=4", "commit=5"]
    # Batch 4's late event went to yesterday's partition, which stays current.
    yesterday = engine.run(
        "SELECT sum(events) AS n FROM gold_operator_minute "
        "WHERE ? BETWEEN commit_id AND visible_through AND event_date < ?",
        [5, NOW.date()],
    )
    assert int(yesterday.n.iloc[0]) == 1
    totals = query_window_totals(engine, 5, Window())
    assert (totals.batches, totals.records, totals.reconciled) == (6, 48, True)


def record_dirs(lake_root: Path) -> list[int]:
    return sorted(int(p.name.split("=")[1]) for p in (lake_root / "_compactions").glob("commit=*"))


def test_compaction_rows_go_once_their_superseded_files_have(spark, lake_root):
    lake = ParquetLake(spark, str(lake_root))
    processor = BatchProcessor(
        spark, lake, compact_after=3, compaction_grace_seconds=0, log=lambda _m: None
    )
    engine = DuckDBEngine(lake_root)
    for number in range(9):
        run_batch(processor, spark, number)
        assert signal_kpi(engine) == expected_signal(number + 1)
    # Batches 3 and 7 compacted; once batch 7's superseded files were deleted, batch 3's rows
    # described no file and went. The newest stays (a view needs a file to read), so the
    # table holds a file or two however many days the job runs.
    assert record_dirs(lake_root) == [7]
    assert set(engine.run("SELECT commit_id FROM compactions").commit_id) == {7}
    totals = query_window_totals(engine, 8, Window())
    assert (totals.batches, totals.reconciled) == (9, True)


def test_a_restart_drops_compaction_rows_whose_files_are_gone(spark, lake_root):
    lake = ParquetLake(spark, str(lake_root))
    processor = BatchProcessor(spark, lake, compact_after=3, log=lambda _m: None)
    for number in range(8):
        run_batch(processor, spark, number)
    assert record_dirs(lake_root) == [3, 7]
    # As if the job stopped after deleting what batch 7 superseded, before the rows.
    for spec in COMPACTED:
        dirs = lake.commit_dirs(spec.name)
        for partition in {p for p, commit in dirs if commit >= 7}:
            lake.delete_older_commits(spec.name, partition, 7)
    restarted = BatchProcessor(spark, lake, compact_after=3, log=lambda _m: None)
    run_batch(restarted, spark, 8)
    assert record_dirs(lake_root) == [7]
    assert signal_kpi(DuckDBEngine(lake_root)) == expected_signal(9)


def test_a_crash_before_the_compacting_batch_commits_changes_nothing(spark, lake_root, monkeypatch):
    lake = ParquetLake(spark, str(lake_root))
    processor = BatchProcessor(spark, lake, compact_after=3, log=lambda _m: None)
    engine = DuckDBEngine(lake_root)
    for number in range(3):
        run_batch(processor, spark, number)

    def die(*_args, **_kwargs):
        raise RuntimeError("killed before the commit")

    monkeypatch.setattr(processor, "_commit", die)
    with pytest.raises(RuntimeError):
        run_batch(processor, spark, 3)
    # The folded files and compaction rows of batch 3 are on disk, but batch 3 is not
    # committed: readers see batches 0-2, each once.
    assert list(engine.run("SELECT commit_id FROM compactions").commit_id) != []
    assert committed_batch(engine) == 2
    assert signal_kpi(engine) == expected_signal(3)

    # The restarted job replays batch 3 from scratch and commits it.
    restarted = BatchProcessor(spark, lake, compact_after=3, log=lambda _m: None)
    run_batch(restarted, spark, 3)
    assert committed_batch(engine) == 3
    assert signal_kpi(engine) == expected_signal(4)
    assert query_window_totals(engine, 3, Window()).reconciled
    folded = engine.run("SELECT table_name, count(*) AS n FROM compactions GROUP BY 1")
    assert folded.n.tolist() == [1, 1, 1, 1, 1]  # the dead attempt's rows were cleared


def test_a_restart_picks_up_the_compaction_state(spark, lake_root):
    lake = ParquetLake(spark, str(lake_root))
    processor = BatchProcessor(spark, lake, compact_after=3, log=lambda _m: None)
    for number in range(4):
        run_batch(processor, spark, number)
    restarted = BatchProcessor(spark, lake, compact_after=3, log=lambda _m: None)
    files = restarted.plan.partitions[
        ("gold_operator_minute", TABLES["gold_operator_minute"].partition_of(NOW))
    ]
    assert (files.since, files.commits) == (3, {3})
    # The files batch 3 superseded are garbage again, with a fresh grace period.
    assert {(g.table, g.commit) for g in restarted.plan.garbage} >= {("gold_operator_minute", 3)}
    run_batch(restarted, spark, 4)
    assert signal_kpi(DuckDBEngine(lake_root)) == expected_signal(5)
