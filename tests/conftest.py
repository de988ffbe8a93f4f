"""Shared fixtures (one SparkSession per session, lakes built by the real job), results hook."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import reliability

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MOBILE_LOGS = PROJECT_ROOT / "backend" / "data" / "mobile-logs.csv"
# The capture has times of day only; replaying it on yesterday's date keeps every
# event in the past whatever time the suite runs.
REPLAY_DATE = datetime.now(UTC).date() - timedelta(days=1)


def _on_glue_runtime() -> bool:
    from importlib.metadata import version

    return not version("pyspark").startswith("4.")


GLUE_MARK = "pytestmark = pytest.mark.glue"


def pytest_ignore_collect(collection_path: Path, config) -> bool | None:
    """On Glue 5.0's runtime (Spark 3.5, ``.venv-glue``) collect only the modules marked
    ``glue``: the others import the Spark-4-only local reader, the dashboard or the CLI."""
    if collection_path.suffix != ".py" or not collection_path.name.startswith("test_"):
        return None
    if _on_glue_runtime() and GLUE_MARK not in collection_path.read_text(encoding="utf-8"):
        return True
    return None


@pytest.fixture(scope="session")
def spark():
    from glue_job.spark_conf import build_spark

    session = build_spark("telcopulse-tests")
    yield session
    session.stop()


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
    from glue_job.batch import BatchProcessor, ParquetLake
    from glue_job.schemas import RAW_SCHEMA

    processor = BatchProcessor(spark, ParquetLake(spark, str(root)), log=lambda _m: None)
    offset = 0
    for batch_id, payloads in enumerate(batches):
        rows = raw_rows(payloads, start=offset)
        offset += len(rows)
        processor.process_batch(spark.createDataFrame(rows, RAW_SCHEMA), batch_id)
    return root


@pytest.fixture(scope="session")
def csv_records() -> list[bytes]:
    from backend.replay import events_from_csv

    return list(events_from_csv(MOBILE_LOGS, REPLAY_DATE))


@pytest.fixture(scope="session")
def csv_lake(spark, tmp_path_factory, csv_records) -> Path:
    """mobile-logs.csv refined by the real job into a lake, in two micro-batches."""
    root = tmp_path_factory.mktemp("csv-lake") / "lake"
    half = len(csv_records) // 2
    return build_lake(spark, root, [csv_records[:half], csv_records[half:]])


def replay_day() -> date:
    return REPLAY_DATE


# --- docs/reliability.md: results of the scenarios this session measured ------------------

_collection_errors: list[str] = []


def pytest_collectreport(report) -> None:
    if report.failed:
        _collection_errors.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus) -> None:
    """docs/reliability.{json,md} from the scenarios recorded this session (see reliability)."""
    reliability.publish(exitstatus, collection_failed=bool(_collection_errors))
