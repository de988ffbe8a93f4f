"""The Kinesis reader against the real emulator: offsets, replay, prefetch and cutoff, and
KPL-aggregated records, down to the lake the real stream job makes of them."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import pickle
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from helpers import PROJECT_ROOT, event, free_port

from backend.emulator import start_emulator, stop_emulator, wait_until_ready
from backend.engine import DuckDBEngine
from backend.kinesis import ensure_stream, kinesis_client
from backend.queries import committed_batch
from backend.settings import load_settings
from glue_job.dedup import EVENT_KEY, first_arrival_mask
from glue_job.kinesis_source import KinesisStreamReader
from glue_job.tables import EVENT_COLUMNS, OPERATOR_MINUTE, POSTAL_STATUS_MINUTE, SILVER, Table

pytestmark = pytest.mark.slow

EVENT_COLUMN_NAMES = {name for name, _ in EVENT_COLUMNS}


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


# --- KPL aggregation ---------------------------------------------------------------------
# Aggregates are built with AWS's own aggregator, as a KPL producer would send them.


def aggregate(user_records: list[tuple[str, bytes]]) -> tuple[str, bytes]:
    """One KPL aggregate of ``(partition key, data)`` user records: its key and its bytes."""
    from aws_kinesis_agg.aggregator import RecordAggregator

    aggregator = RecordAggregator()
    for key, data in user_records:
        assert aggregator.add_user_record(key, data) is None  # all fit in one aggregate
    key, _, data = aggregator.clear_and_get().get_contents()
    return key, data


def kpl_bytes(body: bytes) -> bytes:
    """Any body in the aggregated format's frame: magic prefix, body, valid checksum."""
    import aws_kinesis_agg

    return aws_kinesis_agg.MAGIC + body + hashlib.md5(body).digest()


def corrupted(data: bytes) -> bytes:
    """The same bytes with one bit of the trailing checksum flipped."""
    return data[:-1] + bytes([data[-1] ^ 1])


def put_keyed(client, stream: str, records: list[tuple[str, bytes]]) -> list[str]:
    """Put ``(partition key, data)`` records in order; return their sequence numbers."""
    sequence_numbers = []
    for start in range(0, len(records), 500):
        response = client.put_records(
            StreamName=stream,
            Records=[{"PartitionKey": k, "Data": d} for k, d in records[start : start + 500]],
        )
        assert response["FailedRecordCount"] == 0
        sequence_numbers += [r["SequenceNumber"] for r in response["Records"]]
    return sequence_numbers


def read_all(reader: KinesisStreamReader) -> tuple[list[tuple], dict, list[int]]:
    """Everything the reader has, batch by batch: the rows, the last offset, rows per batch."""
    rows, end, sizes = [], {}, []
    while True:
        batches, new_end = reader.read(end)
        batch = rows_of(batches)
        if new_end == end:
            assert batch == []
            return rows, end, sizes
        rows += batch
        sizes.append(len(batch))
        end = new_end


def dedup_winners(rows: list[tuple]) -> list[bytes]:
    """Payloads dedup keeps of rows that all arrived at one instant, so order alone decides."""
    frame = pd.DataFrame(
        {
            "shard_id": [r[2] for r in rows],
            "sequence_number": [r[3] for r in rows],
            "arrival_time": pd.Timestamp("2026-01-01", tz="UTC"),
            EVENT_KEY: [json.loads(r[0])["event_id"] for r in rows],
        }
    )
    return [r[0] for r, keep in zip(rows, first_arrival_mask(frame), strict=True) if keep]


def test_an_aggregate_gives_one_row_per_user_record_named_in_stream_order(kinesis):
    client = kinesis_client(kinesis)
    ensure_stream(client, "kpl-order", 1)
    before = ("pk-before", event(event_id="a", signal_dbm=-70.0).encode())
    users = [
        ("pk-b", event(event_id="b", signal_dbm=-71.0).encode()),
        ("pk-a", event(event_id="a", signal_dbm=-72.0).encode()),
        ("pk-c", event(event_id="c", signal_dbm=-73.0).encode()),
        ("pk-c", event(event_id="c", signal_dbm=-74.0).encode()),
    ]
    after = ("pk-after", event(event_id="b", signal_dbm=-75.0).encode())
    sent = put_keyed(client, "kpl-order", [before, aggregate(users), after])

    reader = make_reader(kinesis, "kpl-order")
    rows, end, _ = read_all(reader)
    assert [(r[4], r[0]) for r in rows] == [before, *users, after]  # inner partition keys
    shard = rows[0][2]
    assert end == {shard: sent[2]}  # offsets stay Kinesis sequence numbers
    names = [r[3] for r in rows]
    padded = sent[1].zfill(128)
    assert names == [sent[0], *(f"{padded}.{i:08d}" for i in range(4)), sent[2]]
    assert len({(r[2], r[3]) for r in rows}) == len(rows)  # one name per row

    # Stream order decides between rivals that arrived together: a plain record beats a
    # later aggregate's user record, a user record beats a later plain record, and within
    # an aggregate the earlier user record wins.
    assert dedup_winners(rows) == [before[1], users[0][1], users[2][1]]
    # The obvious name, the Kinesis sequence number plus a suffix, gets the second one wrong:
    # zfill shifts its digits left, so it sorts after every plain record of the shard.
    naive = [(*r[:3], sent[1] + r[3][-8:], *r[4:]) if "." in r[3] else r for r in rows]
    assert after[1] in dedup_winners(naive)

    # A crash replay reads the same rows under the same names.
    replayer = pickle.loads(pickle.dumps(reader))
    assert rows_of(replayer.readBetweenOffsets({}, end)) == rows


def test_a_record_the_library_cannot_take_apart_whole_passes_through_as_is(kinesis):
    from aws_kinesis_agg.messages_pb2 import AggregatedRecord

    good = aggregate([("k", b"one"), ("k", b"two")])[1]
    out_of_range = AggregatedRecord(partition_key_table=["k"])
    out_of_range.records.add(partition_key_index=0, data=b"kept")
    out_of_range.records.add(partition_key_index=7, data=b"dropped by the library")
    corrupt = {
        "bad checksum": corrupted(good),
        "truncated": good[:-9],
        "not protobuf": kpl_bytes(b"\xff\xfe not a protobuf message"),
        # The library yields the first user record, logs an error and drops the rest.
        "index out of range": kpl_bytes(out_of_range.SerializeToString()),
        "no user records": kpl_bytes(
            AggregatedRecord(partition_key_table=["k"]).SerializeToString()
        ),
        "magic only": kpl_bytes(b"")[:4],
    }
    as_is = [*corrupt.items(), ("plain", b"plain")]  # (partition key, data)
    client = kinesis_client(kinesis)
    ensure_stream(client, "kpl-corrupt", 1)
    sent = put_keyed(client, "kpl-corrupt", [*as_is, ("agg", good)])

    rows, _, _ = read_all(make_reader(kinesis, "kpl-corrupt"))
    # Each comes back once, byte for byte, under its own key and Kinesis sequence number.
    assert [(r[4], r[0], r[3]) for r in rows[: len(as_is)]] == [
        (key, data, seq) for (key, data), seq in zip(as_is, sent[:-1], strict=True)
    ]
    # The stream goes on: the good aggregate after them is taken apart as usual.
    assert [r[0] for r in rows[len(as_is) :]] == [b"one", b"two"]


def test_the_batch_cap_counts_user_records_and_never_splits_an_aggregate(kinesis):
    client = kinesis_client(kinesis)
    ensure_stream(client, "kpl-cap", 1)
    aggregates = [aggregate([(f"k{a}", f"{a}-{u}".encode()) for u in range(30)]) for a in range(5)]
    put_keyed(client, "kpl-cap", aggregates)

    rows, _, sizes = read_all(make_reader(kinesis, "kpl-cap", maxrecordspershard="70"))
    assert sizes == [60, 60, 30]  # a third aggregate would pass 70: it opens the next batch
    assert [r[0] for r in rows] == [f"{a}-{u}".encode() for a in range(5) for u in range(30)]


# --- the same events, aggregated or not, through the real stream job ----------------------

AGGREGATE_SIZE = 8
DUPLICATE_ID = "kpl-duplicate"


@pytest.fixture(scope="module")
def kpl_events() -> list[tuple[str, bytes]]:
    """``(partition key, payload)`` of valid events, one event id twice (first -70 dBm, then
    -50 dBm, inside one aggregate). Values are binary fractions, so sums are exact."""
    operators = ("Movistar", "Orange", "Vodafone")
    events = [
        (
            f"device-{i % 5}",
            event(
                event_id=f"kpl-{i}",
                operator=operators[i % 3],
                status=i % 4,
                signal_dbm=float(-60 - i),
                precision_m=float(i % 7),
                latitude=41.0 + (i % 4) / 4,
                longitude=2.0 + (i % 8) / 8,
                postal_code=f"0801{i % 4:02d}",
            ).encode(),
        )
        for i in range(40)
    ]
    for position, signal in ((10, -70.0), (13, -50.0)):
        duplicate = event(event_id=DUPLICATE_ID, signal_dbm=signal, latitude=41.5, longitude=2.5)
        events.insert(position, ("device-dup", duplicate.encode()))
    return events


@dataclass(frozen=True)
class StreamLake:
    """What the real stream job made of one stream, as the dashboard reads it."""

    corrupt: tuple[str, bytes] | None  # the corrupt aggregate's sequence number and bytes
    bronze: pd.DataFrame
    silver: pd.DataFrame
    quarantine: pd.DataFrame
    ops: pd.DataFrame
    gold: dict[str, pd.DataFrame]


def start_stream_job(kinesis, home: Path, stream: str) -> subprocess.Popen:
    """``telcopulse stream --until-idle`` on ``stream``, with its lake under ``home``. Its
    stderr goes to a file there, not a pipe: two jobs run at once, and a pipe not yet read
    could fill and stall the other one."""
    env = {
        **os.environ,
        "TELCOPULSE_MODE": "local",
        "TELCOPULSE_HOME": str(home),
        "TELCOPULSE_KINESIS_ENDPOINT": kinesis.endpoint_url,
        "TELCOPULSE_STREAM_NAME": stream,
    }
    with (home / "stream.err").open("w") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "backend.cli", "stream", "--until-idle"],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )


def finished(job: subprocess.Popen, home: Path) -> None:
    """Wait for a job from ``start_stream_job`` (killed after 10 minutes); it must succeed."""
    try:
        job.wait(timeout=600)
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    assert job.returncode == 0, (home / "stream.err").read_text()[-3000:]


def read_lake(home: Path, corrupt: tuple[str, bytes] | None = None) -> StreamLake:
    engine = DuckDBEngine(home / "lake")
    batch = committed_batch(engine)
    visible = "WHERE ? BETWEEN commit_id AND visible_through"
    return StreamLake(
        corrupt=corrupt,
        bronze=engine.run("SELECT * FROM bronze WHERE commit_id <= ?", [batch]),
        silver=engine.run("SELECT * FROM silver WHERE commit_id <= ?", [batch]),
        quarantine=engine.run(f"SELECT * FROM quarantine {visible}", [batch]),
        ops=engine.run(f"SELECT * FROM ops {visible}", [batch]),
        gold={
            table.name: merged(engine.run(f"SELECT * FROM {table.name} {visible}", [batch]), table)
            for table in (OPERATOR_MINUTE, POSTAL_STATUS_MINUTE)
        },
    )


def merged(gold: pd.DataFrame, table: Table) -> pd.DataFrame:
    """A gold table's partial rows summed per key (as a KPI over all of them would)."""
    values = [c for c, _ in table.columns if c not in (*table.keys, "commit_id")]
    how = {
        c: "min" if c.endswith("_min") else "max" if c.endswith("_max") else "sum" for c in values
    }
    return (
        gold.groupby(list(table.keys), dropna=False)
        .agg(how)
        .reset_index()
        .sort_values(list(table.keys))
        .reset_index(drop=True)
    )


@pytest.fixture(scope="module")
def kpl_lakes(kinesis, kpl_events, tmp_path_factory) -> dict[str, StreamLake]:
    """The same events sent as KPL aggregates (plus a corrupt one) on one stream and as
    plain records on another, each refined by the real stream job into its own lake."""
    client = kinesis_client(kinesis)
    aggregates = [
        aggregate(kpl_events[i : i + AGGREGATE_SIZE])
        for i in range(0, len(kpl_events), AGGREGATE_SIZE)
    ]
    corrupt = corrupted(aggregates[0][1])
    ensure_stream(client, "kpl-aggregated", kinesis.shards)
    sent = put_keyed(
        client, "kpl-aggregated", [*aggregates[:2], ("corrupt", corrupt), *aggregates[2:]]
    )
    ensure_stream(client, "kpl-plain", kinesis.shards)
    put_keyed(client, "kpl-plain", kpl_events)

    # Both jobs at once: much of a start-up is waiting (for the JVM, the emulator, the
    # idle check), so the pair takes less than two in a row.
    corrupts = {"kpl-aggregated": (sent[2], corrupt), "kpl-plain": None}
    homes = {stream: tmp_path_factory.mktemp(stream) for stream in corrupts}
    jobs = {stream: start_stream_job(kinesis, home, stream) for stream, home in homes.items()}
    for stream, job in jobs.items():
        finished(job, homes[stream])
    return {stream: read_lake(homes[stream], corrupts[stream]) for stream in corrupts}


def payload_bytes(row) -> bytes:
    if isinstance(row["payload_base64"], str):
        return base64.b64decode(row["payload_base64"])
    return row["payload"].encode("utf-8")


def test_bronze_gets_one_row_per_user_record_byte_for_byte(kpl_lakes, kpl_events):
    aggregated, plain = kpl_lakes["kpl-aggregated"].bronze, kpl_lakes["kpl-plain"].bronze
    corrupt = aggregated["sequence_number"] == kpl_lakes["kpl-aggregated"].corrupt[0]
    assert corrupt.sum() == 1
    user_rows = aggregated[~corrupt]
    expected = Counter((data, key) for key, data in kpl_events)
    for bronze in (user_rows, plain):
        assert (
            Counter((payload_bytes(row), row["partition_key"]) for _, row in bronze.iterrows())
            == expected
        )
    assert user_rows["sequence_number"].str.contains(".", regex=False).all()
    assert not user_rows.duplicated(["shard_id", "sequence_number"]).any()


def test_silver_and_gold_are_the_same_whichever_way_the_events_were_sent(kpl_lakes, kpl_events):
    columns = [*(c for c, _ in SILVER.columns if c in EVENT_COLUMN_NAMES), "event_date"]
    silver = {
        name: lake.silver[columns].sort_values("event_id").reset_index(drop=True)
        for name, lake in kpl_lakes.items()
    }
    pd.testing.assert_frame_equal(silver["kpl-aggregated"], silver["kpl-plain"])
    assert len(silver["kpl-plain"]) == len({json.loads(d)["event_id"] for _, d in kpl_events})
    for name, lake in kpl_lakes.items():
        first = lake.silver.set_index("event_id").loc[DUPLICATE_ID, "signal_dbm"]
        assert first == -70.0, name  # dedup kept the first of the two
        assert lake.ops["duplicates"].sum() == 1
    for table in (OPERATOR_MINUTE, POSTAL_STATUS_MINUTE):
        aggregated, plain = (kpl_lakes[n].gold[table.name] for n in ("kpl-aggregated", "kpl-plain"))
        pd.testing.assert_frame_equal(aggregated, plain)
        assert aggregated["events"].sum() == len(silver["kpl-plain"])


def test_a_corrupt_aggregate_reaches_bronze_byte_for_byte_and_quarantine(kpl_lakes):
    lake = kpl_lakes["kpl-aggregated"]
    sequence_number, corrupt = lake.corrupt
    assert "." not in sequence_number  # named by its own Kinesis sequence number
    bronze = lake.bronze.set_index("sequence_number").loc[sequence_number]
    assert payload_bytes(bronze) == corrupt
    assert bronze["partition_key"] == "corrupt"
    quarantined = lake.quarantine.set_index("sequence_number").loc[sequence_number]
    assert payload_bytes(quarantined) == corrupt
    assert list(quarantined["reasons"]) == ["invalid_utf8"]
    assert len(lake.quarantine) == 1
    for name, each in kpl_lakes.items():
        ops = each.ops
        assert (
            ops["bronze_rows"] == ops["silver_rows"] + ops["quarantine_rows"] + ops["duplicates"]
        ).all(), name
        assert ops["bronze_rows"].sum() == len(each.bronze), name
