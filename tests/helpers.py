"""Shared test helpers (no fixtures): the project's paths, a free port, contract events,
lakes built by the real per-batch function, and build/, where a test run writes its results.

Import them from here (``from helpers import build_lake, event``), never from ``conftest``:
pytest imports each conftest.py outside a package as the one module ``conftest``, so what
``from conftest import ...`` finds depends on which conftest was imported last.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from hypothesis import strategies as st

from backend.engine import DuckDBEngine
from backend.queries import BEGINNING, END_OF_TIME, Window

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MOBILE_LOGS = PROJECT_ROOT / "backend" / "data" / "mobile-logs.csv"
# The capture has times of day only; replaying it on yesterday's date keeps every
# event in the past whatever time the suite runs.
REPLAY_DATE = datetime.now(UTC).date() - timedelta(days=1)


def replay_day() -> date:
    return REPLAY_DATE


def newest_commit_dir(table: Path) -> Path:
    """A table's commit directory in its newest partition (hours compared as numbers): the
    one partition every range of a page reads, whatever the rollups cover below it."""

    def key(path: Path) -> tuple:
        parts = path.relative_to(table).parts
        return tuple(int(v) if v.isdigit() else v for _, _, v in (p.partition("=") for p in parts))

    return max((p for p in table.rglob("commit=*") if p.is_dir()), key=key)


def wait_for(check, timeout: float, what: str, poll: float = 0.5) -> None:
    """Poll ``check`` until it is true; fail saying ``what`` did not happen in time."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what} within {timeout:g} s"
        time.sleep(poll)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def raw_rows(payloads: Iterable[bytes | str], *, shard: str = "shardId-000000000000", start=0):
    """Stream rows as the Kinesis reader emits them, for feeding process_batch directly."""
    arrival = datetime.now(UTC)
    rows = []
    for offset, payload in enumerate(payloads):
        data = payload.encode() if isinstance(payload, str) else payload
        seq = str(49_000_000_000_000_000_000 + start + offset)
        rows.append((data, "telcopulse-events", shard, seq, "pk", arrival))
    return rows


def event(**fields) -> str:
    """A valid contract event as JSON, with fields overridden or removed (value ...)."""
    base = {
        "event_id": "e-1",
        "event_time": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
        "operator": "Movistar",
        "status": 0,
        "signal_dbm": -85.0,
        "precision_m": 12.0,
        "latitude": 41.39,
        "longitude": 2.17,
        "postal_code": "080193",
    }
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not ...})


def build_lake(spark, root: Path, batches: list[list[bytes | str]]) -> Path:
    """Run the real per-batch function over static batches, as foreachBatch would."""
    from glue_job.batch import BatchProcessor
    from glue_job.lake import ParquetLake
    from glue_job.schemas import RAW_SCHEMA

    processor = BatchProcessor(spark, ParquetLake(spark, str(root)), log=lambda _m: None)
    offset = 0
    for batch_id, payloads in enumerate(batches):
        rows = raw_rows(payloads, start=offset)
        offset += len(rows)
        processor.process_batch(spark.createDataFrame(rows, RAW_SCHEMA), batch_id)
    return root


def drop_running_figures(root: Path, columns: tuple[str, ...] | None = None) -> None:
    """The lake's commit rows as a job wrote them before they carried running figures
    (``glue_job.batch.SoFar``; ``columns``: only those, as a job before them wrote them):
    those columns dropped from every ``_ops`` file, and each file's checksum removed, so
    nothing contradicts the rewrite."""
    import pyarrow.parquet as pq

    from glue_job.batch import SoFar

    for path in (root / "_ops").rglob("*.parquet"):
        table = pq.read_table(path, partitioning=None)
        pq.write_table(table.drop_columns(list(columns or SoFar.COLUMNS)), path)
        path.with_name(f".{path.name}.crc").unlink()


def record_queries(monkeypatch) -> list[tuple[str, str]]:
    """From now on, every ``DuckDBEngine.run`` as (its SQL, the name of the thread that ran
    it), run as usual."""
    import threading

    calls: list[tuple[str, str]] = []
    original = DuckDBEngine.run

    def recording(self, sql, params=(), **scope):
        calls.append((sql, threading.current_thread().name))
        return original(self, sql, params, **scope)

    monkeypatch.setattr(DuckDBEngine, "run", recording)
    return calls


# --- build/: what a test run writes (git-ignored); `make docs` copies it to docs/ ----------

BUILD = PROJECT_ROOT / "build"
# Written at the end of a session into each build/ directory it wrote to: "passed ..." or
# "failed ...", one line. `make docs` copies only what a passing session wrote.
SESSION_STAMP = "session.txt"
_written: set[Path] = set()


def build_output(name: str) -> Path:
    """``build/<name>/``, created, for this session's results: stamped at the session's end."""
    directory = BUILD / name
    directory.mkdir(parents=True, exist_ok=True)
    _written.add(directory)
    return directory


def written_build_outputs() -> list[str]:
    """The names of the build/ directories this session handed out."""
    return sorted(directory.name for directory in _written)


def stamp_build_outputs(failure: str | None) -> list[Path]:
    """Stamp each directory ``build_output`` handed out this session with how the session
    ended: ``failure`` says why it failed, None that it passed."""
    finished = datetime.now(UTC).isoformat(timespec="seconds")
    outcome = "passed" if failure is None else f"failed ({failure})"
    for directory in sorted(_written):
        (directory / SESSION_STAMP).write_text(f"{outcome}, finished {finished}\n", "utf-8")
    return sorted(_written)


class EveryFileEngine(DuckDBEngine):
    """DuckDB reading every file of each table, as if no query had a ``Scope``: the
    reference the partition-pruned reads are compared with."""

    def run(self, sql, params=(), *, scope=None):
        return super().run(sql, params)


def windows_within(start: datetime, end: datetime) -> st.SearchStrategy[Window]:
    """Hypothesis: windows between ``start`` and ``end``, on whole minutes or both a
    number of seconds into them, now and then open at either end (``BEGINNING``,
    ``END_OF_TIME``): the ranges the rollup property tests compose."""
    minutes = int((end - start).total_seconds() // 60)

    @st.composite
    def windows(draw) -> Window:
        seconds = st.integers(0, 59) if draw(st.booleans()) else st.just(0)
        a = start + timedelta(minutes=draw(st.integers(0, minutes)), seconds=draw(seconds))
        b = start + timedelta(minutes=draw(st.integers(0, minutes)), seconds=draw(seconds))
        since, until = min(a, b), max(a, b)
        if draw(st.integers(0, 9)) == 0:
            since = BEGINNING
        if draw(st.integers(0, 9)) == 0:
            until = END_OF_TIME
        return Window(since=since, until=until)

    return windows()
