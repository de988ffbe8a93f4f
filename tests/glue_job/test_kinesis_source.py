"""The Kinesis reader against the real emulator: offsets, replay, prefetch and cutoff."""

from __future__ import annotations

import pickle
import time
from datetime import UTC, datetime, timedelta

import pytest
from conftest import free_port

from backend.emulator import start_emulator, stop_emulator, wait_until_ready
from backend.kinesis import ensure_stream, kinesis_client
from backend.settings import load_settings
from glue_job.kinesis_source import KinesisStreamReader

pytestmark = pytest.mark.slow


def rows_of(batches) -> list[tuple]:
    """What the reader returned (Arrow batches in RAW_SCHEMA) as row tuples."""
    return [tuple(row.values()) for batch in batches for row in batch.to_pylist()]


@pytest.fixture(scope="module")
def kinesis(tmp_path_factory):
    settings = load_settings(
        home=tmp_path_factory.mktemp("kinesis-home"), emulator_port=free_port(), shards=2
    )
    process = start_emulator(settings)
    try:
        wait_until_ready(settings, timeout=30)
        yield settings
    finally:
        stop_emulator(process)


def make_reader(settings, stream: str, **extra) -> KinesisStreamReader:
    options = {
        "streamname": stream,
        "endpointurl": settings.endpoint_url,
        "region": settings.region,
        "accesskey": "local",
        "secretkey": "local",
        **extra,
    }
    return KinesisStreamReader(options)


def put(client, stream: str, payloads: list[bytes]) -> None:
    for start in range(0, len(payloads), 500):
        chunk = payloads[start : start + 500]
        response = client.put_records(
            StreamName=stream,
            Records=[{"Data": d, "PartitionKey": str(i)} for i, d in enumerate(chunk, start)],
        )
        assert response["FailedRecordCount"] == 0


def test_reads_every_record_once_and_replays_a_batch_exactly(kinesis):
    client = kinesis_client(kinesis)
    ensure_stream(client, "offsets", 2)
    payloads = [f"record-{i}".encode() for i in range(3000)]
    put(client, "offsets", payloads)

    reader = make_reader(kinesis, "offsets", maxrecordspershard="1000")
    first_rows, first_end = reader.read({})
    first_rows = rows_of(first_rows)
    assert len(first_rows) == 2000  # capped at 1,000 per shard
    assert len(first_end) == 2

    seen = [row[0] for row in first_rows]
    end = first_end
    while True:
        rows, new_end = reader.read(end)
        rows = rows_of(rows)
        if new_end == end:
            assert rows == []
            break
        seen += [row[0] for row in rows]
        end = new_end
    assert sorted(seen) == sorted(payloads)

    # Crash recovery: a freshly unpickled reader replays the first batch row for row.
    replayer = pickle.loads(pickle.dumps(reader))
    replayed = rows_of(replayer.readBetweenOffsets({}, first_end))
    assert sorted(r[:5] for r in replayed) == sorted(r[:5] for r in first_rows)


def test_records_put_while_spark_is_busy_arrive_next_batch(kinesis):
    client = kinesis_client(kinesis)
    ensure_stream(client, "prefetch", 2)
    put(client, "prefetch", [b"early"] * 10)
    reader = make_reader(kinesis, "prefetch")
    rows, end = reader.read({})
    assert len(rows_of(rows)) == 10
    put(client, "prefetch", [b"late"] * 7)
    time.sleep(0.2)  # the background prefetch may or may not have seen them: both must work
    rows, end2 = reader.read(end)
    assert [r[0] for r in rows_of(rows)] == [b"late"] * 7
    rows, end3 = reader.read(end2)
    assert rows_of(rows) == []
    assert end3 == end2


def test_available_now_cutoff_ignores_later_records(kinesis):
    client = kinesis_client(kinesis)
    ensure_stream(client, "cutoff", 2)
    put(client, "cutoff", [b"before"] * 5)
    reader = make_reader(kinesis, "cutoff")
    time.sleep(1.1)  # arrival timestamps have one-second resolution in the emulator
    reader.prepareForTriggerAvailableNow()
    time.sleep(1.1)
    put(client, "cutoff", [b"after"] * 5)
    rows, end = reader.read({})
    assert [r[0] for r in rows_of(rows)] == [b"before"] * 5
    rows, end2 = reader.read(end)
    assert rows_of(rows) == []
    assert end2 == end
    assert reader.cutoff <= datetime.now(UTC) + timedelta(seconds=1)


def test_unreachable_stream_yields_no_data_instead_of_failing(kinesis):
    settings = load_settings(home=kinesis.home, emulator_port=free_port())
    reader = make_reader(settings, "nowhere")
    rows, end = reader.read({"shardId-000000000000": "1"})
    assert rows_of(rows) == []
    assert end == {"shardId-000000000000": "1"}
