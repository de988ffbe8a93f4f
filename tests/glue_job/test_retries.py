"""Glue's in-process batch retries: a failure at any step of a batch, then the retry.

Glue's ``forEachBatch`` runs a failed batch again in the same process with the same id
(``glue_fakes.glue_for_each_batch``). Batch 2 here writes bronze, silver and gold,
compacts all four compacted tables (``compact_after=2``) and commits; a fault is injected
at each of its steps in turn: after each layer's write, inside the compaction of each
table, before, during and after the ``_ops`` commit row (and after batch 3's quarantine
write, the one layer batch 2 leaves to compaction). After the retry, and one more batch, the lake
must read exactly as a run without the fault: every table's visible rows and the KPIs.
The records reach the processor the way the Glue entry hands them over (``to_raw`` of a
frame shaped like Glue's Kinesis source). A fixed clock makes the two runs comparable.
"""

from __future__ import annotations

import shutil
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from glue_fakes import STREAM, connector_frame, glue_for_each_batch
from helpers import event

from backend.engine import DuckDBEngine
from backend.queries import Window, run_kpi
from glue_job.batch import BatchProcessor
from glue_job.contract import H3_RESOLUTIONS
from glue_job.glue_entry import to_raw
from glue_job.lake import ParquetLake
from glue_job.rollups import rollup_tables

pytestmark = pytest.mark.glue  # runs on Glue 5.0's runtime too (Makefile: test)

# The processor's clock stands still at ten past the last full hour: both runs see the same
# batch times, and every event lies in the past and within the dedup horizon.
NOW = datetime.now(UTC).replace(minute=10, second=0, microsecond=0) - timedelta(hours=1)
# The late event of batch 2 falls on the day before NOW's, so it updates a sealed hour and
# a sealed day of the rollups (glue_job.rollups) whatever time the suite runs.
LATE_MINUTES = (NOW.hour + 1) * 60


def at(event_id: str, minutes_ago: int, **fields) -> str:
    return event(
        event_id=event_id, event_time=(NOW - timedelta(minutes=minutes_ago)).isoformat(), **fields
    )


BATCHES = [
    [at(f"a{i}", 5, signal_dbm=-70.0 - i, status=i % 4) for i in range(8)]
    + ["not json", at("bad-a", 5, signal_dbm=5)],
    [at(f"b{i}", 4, operator="Orange", signal_dbm=-80.0 - i) for i in range(8)]
    + [at("a0", 4), "{]"],  # a0 again: a duplicate across batches
    # No bad record: quarantine is written by compaction alone, as it often is.
    [at(f"c{i}", 3, operator="Vodafone", precision_m=5.0 + i) for i in range(8)]
    # A late event into another hour, a duplicate across batches and one within the batch.
    + [at("late", LATE_MINUTES, status=1), at("b1", 3), at("c0", 3)],
    [at(f"d{i}", 2, postal_code="28001") for i in range(4)] + [at("c1", 2), "nope"],
]

# Batch 2's writes, in the order each table receives them: its own rows, then compaction's.
STEPS = [
    ("bronze", 1),
    ("silver", 1),
    ("gold_operator_minute", 1),
    ("gold_postal_status_minute", 1),
    ("gold_cell_minute", 1),
    ("gold_operator_hour", 1),  # the late event's hour and day
    ("gold_postal_status_hour", 1),
    ("gold_operator_day", 1),
    ("gold_postal_status_day", 1),
    ("gold_operator_minute", 2),  # compaction
    ("gold_postal_status_minute", 2),  # compaction
    ("gold_cell_minute", 2),  # compaction
    ("ops", 1),  # compaction of the day's _ops
    ("quarantine", 1),  # compaction (batch 2 quarantines nothing itself)
    ("compactions", 1),
    ("ops", 2),  # the commit row
]
# Each fault, and whether batch 3 runs after the retry too: it shows the processor's own
# state (dedup index, compaction bookkeeping) came back right, which matters most where the
# failure came after the commit row. Elsewhere the lake after batch 2 says it all.
# Batch 3 writes quarantine rows of its own: the one layer batch 2 does not write itself.
FAULTS = [
    *(
        pytest.param((table, n, "after", 2, False), id=f"after {table} #{n}")
        for table, n in STEPS[:-1]
    ),
    pytest.param(("ops", 2, "before", 2, False), id="before the commit row"),
    pytest.param(("ops", 2, "during", 2, True), id="during the commit row"),
    pytest.param(("batch", 1, "after", 2, True), id="after the commit"),
    pytest.param(("quarantine", 1, "after", 3, True), id="after quarantine #1 (batch 3)"),
]


class InjectedFault(RuntimeError):
    pass


class Fault:
    """Fails batch ``batch`` once, at one step: its ``occurrence``-th write to ``table``
    ("before" it, or once it landed: "after"; "during" lands half the rows), or after the
    whole batch committed (table "batch")."""

    def __init__(self, table: str, occurrence: int, when: str, batch: int = 2) -> None:
        self.table, self.occurrence, self.when, self.batch = table, occurrence, when, batch
        self.fired = False
        self.seen: Counter = Counter()
        self.lock = threading.Lock()

    def hit(self, table: str, commit: int) -> bool:
        with self.lock:
            if self.fired or commit != self.batch:
                return False
            self.seen[table] += 1
            self.fired = (table, self.seen[table]) == (self.table, self.occurrence)
            return self.fired

    def log(self, message: str) -> None:
        if message.startswith(f"batch {self.batch}:") and self.hit("batch", self.batch):
            raise InjectedFault("after the commit")


class FaultyLake(ParquetLake):
    fault: Fault | None = None

    def write(self, table, df, commit, **options):
        if self.fault is None or not self.fault.hit(table, commit):
            return super().write(table, df, commit, **options)
        if self.fault.when == "before":
            raise InjectedFault(f"before writing {table}")
        if self.fault.when == "during":
            super().write(table, df.limit(max(1, df.count() // 2)), commit, **options)
            raise InjectedFault(f"while writing {table}")
        super().write(table, df, commit, **options)
        raise InjectedFault(f"after writing {table}")


def run_batches(spark, root: Path, first: int, last: int, fault: Fault | None = None) -> list:
    """Batches ``first``..``last`` through a new processor, as Glue's forEachBatch runs
    them; return the failed attempts."""
    lake = FaultyLake(spark, str(root))
    lake.fault = fault
    processor = BatchProcessor(
        spark, lake, compact_after=2, clock=lambda: NOW, log=fault.log if fault else print
    )
    frames = [
        connector_frame(spark, payloads, arrival=NOW - timedelta(seconds=1))
        for payloads in BATCHES[first : last + 1]
    ]
    return glue_for_each_batch(
        frames,
        lambda frame, batch_id: processor.process_batch(to_raw(frame, STREAM), batch_id),
        first_batch_id=first,
    )


def snapshot(root: Path) -> dict:
    """Everything a reader can see: each table's visible rows, and the KPIs."""
    engine = DuckDBEngine(root)
    seen = {}
    for table in ("bronze", "silver", "quarantine", "ops", "compactions"):
        seen[table] = rows(engine.run(f"SELECT * FROM {table}"))
    for table in ("gold_operator_minute", "gold_postal_status_minute", *rollup_tables()):
        seen[table] = rows(engine.run(f"SELECT * FROM {table}"))
    for kpi in ("kpi_signal", "kpi_precision", "kpi_status"):
        seen[kpi] = rows(run_kpi(engine, kpi, Window()))
    return seen


def rows(frame) -> list[tuple]:
    # How long a batch took is the one thing a retry may change.
    frame = frame.drop(columns=["duration_seconds"], errors="ignore")
    frame = frame.astype(object).where(frame.notna(), None)  # NaN never equals NaN
    cells = [
        tuple(tuple(v) if hasattr(v, "__len__") and not isinstance(v, str) else v for v in row)
        for row in frame.itertuples(index=False)
    ]
    return sorted(cells, key=repr)


@pytest.fixture(scope="module")
def prefix(spark, tmp_path_factory) -> Path:
    """Batches 0 and 1, committed: the lake every scenario starts from."""
    root = tmp_path_factory.mktemp("retry-prefix") / "lake"
    assert run_batches(spark, root, 0, 1) == []
    return root


@pytest.fixture(scope="module")
def clean(spark, prefix, tmp_path_factory) -> dict[int, dict]:
    """What a run without faults leaves after batch 2, and after batch 3."""
    root = tmp_path_factory.mktemp("retry-clean") / "lake"
    shutil.copytree(prefix, root)
    assert run_batches(spark, root, 2, 2) == []
    seen = snapshot(root)
    # The scenario is the one meant: batch 2 compacted every compacted table.
    assert sorted(table for table, *_ in seen["compactions"]) == [
        "gold_cell_minute",
        "gold_operator_minute",
        "gold_postal_status_minute",
        "ops",
        "quarantine",
    ]
    assert len(seen["silver"]) == 8 + 8 + 9  # a0, b1 and c0 again are duplicates
    # ... and rolled the late event up into its sealed hour and day (a cell row per resolution).
    for table in rollup_tables():
        rows = len(H3_RESOLUTIONS) if table.startswith("gold_cell_") else 1
        assert len(seen[table]) == rows, table
    assert run_batches(spark, root, 3, 3) == []
    return {2: seen, 3: snapshot(root)}


def journals(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "_attempts").glob("[0-9]*.json"))


# Only Glue retries a batch in place, so `make test` runs these on Glue's runtime alone
# (about 220 s of Spark batches); the next test, a retry in a new process as after a crash of
# the local job, runs on both.
@pytest.mark.glue_only
@pytest.mark.parametrize("fault", FAULTS)
def test_a_batch_retried_in_place_leaves_the_lake_a_clean_run_leaves(
    spark, prefix, clean, tmp_path, fault
):
    *where, then_batch_3 = fault
    root = tmp_path / "lake"
    shutil.copytree(prefix, root)
    injected = Fault(*where)
    last = 3 if then_batch_3 else 2
    failures = run_batches(spark, root, 2, last, injected)
    assert injected.fired
    assert [batch for batch, _ in failures] == [injected.batch]  # one failure, then success
    after = snapshot(root)
    for name, expected in clean[last].items():
        assert after[name] == expected, f"{name} differs from a clean run"
    assert journals(root) == []  # no attempt journal left behind


def test_an_attempt_that_died_is_cleared_by_the_next_process(spark, prefix, clean, tmp_path):
    """The same clean slate when the retry runs in a new process (the job died)."""
    root = tmp_path / "lake"
    shutil.copytree(prefix, root)
    injected = Fault("ops", 1, "after")  # mid-compaction: folded _ops rows already written
    lake = FaultyLake(spark, str(root))
    lake.fault = injected
    processor = BatchProcessor(spark, lake, compact_after=2, clock=lambda: NOW, log=print)
    frame = to_raw(connector_frame(spark, BATCHES[2], arrival=NOW - timedelta(seconds=1)), STREAM)
    with pytest.raises(InjectedFault):
        processor.process_batch(frame, 2)
    assert journals(root) == ["2.json"]
    assert run_batches(spark, root, 2, 3) == []
    assert snapshot(root) == clean[3]
