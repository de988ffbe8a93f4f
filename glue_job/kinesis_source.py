"""Kinesis reader (ingest -> bronze): a Spark Python Data Source for the local job.

Built on ``SimpleDataSourceStreamReader`` so each record is read once: ``read``
returns the records and the next offset together. Offsets are
``{shard_id: last sequence number read}``; a shard missing from the offset is read
from TRIM_HORIZON, so shards added by a reshard are picked up as they appear.
In production Glue's own Kinesis connector replaces this module.

Records in the Kinesis Producer Library's aggregated format are de-aggregated with
AWS's own library (``aws-kinesis-agg``), as DESIGN.md expects of Glue's connector (no AWS
document found says whether it does; a Glue run must show it): each user record becomes
its own row, with the partition key it carries inside the aggregate (explicit
hash keys are ignored). Every other record passes through unchanged, and so does an
aggregate the library cannot take apart whole (bad checksum, bad protobuf, an index
out of range, no user records): its raw bytes reach bronze and quarantine rejects them.
Offsets stay Kinesis sequence numbers, since an aggregate is always read whole, and the
per-shard batch cap counts rows, so an aggregate that would overflow it waits a batch.

Sequence numbers of user records. ``(shard_id, sequence_number)`` names a row within a
batch, and dedup orders rivals by ``sequence_number.zfill(128)`` compared as text, so a
user record needs a name of its own that still sorts in stream order against the plain
records of its shard. ``S`` plus a suffix would not: zfill right-aligns, so ``S + "01"``
pads to a string whose digits sit two places further left than those of a plain record,
and it sorts after every plain record of the shard, later ones included. So a user record
is named by its aggregate's sequence number already padded to 128 digits, then ``.``
and its 8-digit index in the aggregate: ``000…0<S>.00000002``. zfill leaves that string
as it is; it shares its first 128 characters with the padded ``S`` and only adds to them,
so it sorts just after ``S`` and before the next record of the shard, whatever that is,
and by index among its siblings. Read as a decimal number it is ``S`` plus a fraction,
which orders the same way. Plain records keep their Kinesis sequence number as is. Eight
digits cover any aggregate: a user record takes at least 6 bytes of one, so even a 10 MiB
record holds fewer than two million.
"""

from __future__ import annotations

import base64
import functools
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from pyspark.sql.datasource import DataSource, SimpleDataSourceStreamReader
from pyspark.sql.streaming.datasource import SupportsTriggerAvailableNow

from glue_job.defaults import DEFAULT_MAX_RECORDS_PER_SHARD
from glue_job.schemas import RAW_SCHEMA

SOURCE_NAME = "telcopulse_kinesis"
GET_RECORDS_LIMIT = 10_000  # the Kinesis API maximum per call
# glue_job.dedup orders sequence numbers as text left-padded with zeros to this width.
SEQUENCE_DIGITS = 128
SUBSEQUENCE_DIGITS = 8  # a user record's index within its aggregate (see the docstring)


class KinesisDataSource(DataSource):
    """Options: streamName, endpointUrl, region, maxRecordsPerShard, accessKey, secretKey."""

    @classmethod
    def name(cls) -> str:
        return SOURCE_NAME

    def schema(self):
        return RAW_SCHEMA

    def simpleStreamReader(self, schema):
        return KinesisStreamReader(self.options)


class KinesisStreamReader(SimpleDataSourceStreamReader, SupportsTriggerAvailableNow):
    def __init__(self, options) -> None:
        # self.options keys are lower-cased; copy out what we need now.
        self.stream_name = options["streamname"]
        self.endpoint_url = options.get("endpointurl") or None
        self.region = options.get("region") or "us-east-1"
        self.max_records_per_shard = int(
            options.get("maxrecordspershard") or DEFAULT_MAX_RECORDS_PER_SHARD
        )
        self.access_key = options.get("accesskey") or None
        self.secret_key = options.get("secretkey") or None
        self.prefetch = (options.get("prefetch") or "true").lower() == "true"
        self.cutoff: datetime | None = None
        self._prefetched: tuple[dict, dict[str, Future]] | None = None
        self._client = None
        self._iterators: dict[str, tuple[str | None, str]] = {}
        self._drained: set[str] = set()

    # A crash replay runs on a freshly unpickled reader: never ship live clients.
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.update(_client=None, _iterators={}, _drained=set(), _prefetched=None)
        return state

    @property
    def client(self):
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.client(
                "kinesis",
                region_name=self.region,
                endpoint_url=self.endpoint_url,
                aws_access_key_id=self.access_key,
                aws_secret_access_key=self.secret_key,
                config=Config(
                    connect_timeout=3,
                    read_timeout=20,
                    retries={"max_attempts": 2, "mode": "standard"},
                    max_pool_connections=32,
                ),
            )
        return self._client

    def initialOffset(self) -> dict:
        return {}

    def prepareForTriggerAvailableNow(self) -> None:
        # Records that arrive after this moment belong to the next run.
        self.cutoff = datetime.now(UTC)

    def read(self, start: dict) -> tuple:
        _kpl_library()  # a missing library fails the query here, not each shard read quietly
        try:
            shards = self._list_shards()
        except Exception as exc:  # noqa: BLE001 - ride out a briefly unreachable stream
            _warn(f"cannot list shards of {self.stream_name}: {exc}; retrying next trigger")
            return iter([]), start
        # What was fetched while Spark processed the previous batch, if it starts where
        # this batch starts; then top up synchronously so nothing new waits a trigger.
        ahead = self._take_prefetch(start)
        rows: list[tuple] = []
        end = dict(start)
        pending = [s for s in shards if s not in self._drained]

        def read_one(shard_id: str) -> tuple[list[tuple], str | None]:
            early, position = ahead.get(shard_id, ([], start.get(shard_id)))
            budget = self.max_records_per_shard - len(early)
            late, last = (
                self._read_shard(shard_id, position, budget, batch_has_rows=bool(early))
                if budget > 0
                else ([], position)
            )
            return early + late, last

        with ThreadPoolExecutor(max_workers=max(1, min(8, len(pending)))) as pool:
            results = list(pool.map(read_one, pending))
        for shard_id, (shard_rows, last_seq) in zip(pending, results, strict=True):
            rows.extend(shard_rows)
            if last_seq is not None:
                end[shard_id] = last_seq
        self._start_prefetch(end, pending)
        return iter(to_record_batches(rows)), end

    def _start_prefetch(self, start: dict, shards: list[str]) -> None:
        """Read the next batch's records in the background while Spark is busy."""
        if not self.prefetch or not shards:
            return
        pool = ThreadPoolExecutor(max_workers=min(8, len(shards)))
        futures = {s: pool.submit(self._read_shard, s, start.get(s)) for s in shards}
        pool.shutdown(wait=False)
        self._prefetched = (dict(start), futures)

    def _take_prefetch(self, start: dict) -> dict[str, tuple[list[tuple], str | None]]:
        if self._prefetched is None:
            return {}
        origin, futures = self._prefetched
        self._prefetched = None
        results = {s: f.result() for s, f in futures.items()}  # always join: shared iterators
        if origin != start:
            self._iterators.clear()  # Spark asked for another position: start afresh
            return {}
        return results

    def readBetweenOffsets(self, start: dict, end: dict):
        _kpl_library()
        rows: list[tuple] = []
        for shard_id, last in end.items():
            if start.get(shard_id) == last:
                continue
            rows.extend(self._replay_shard(shard_id, start.get(shard_id), last))
        return iter(to_record_batches(rows))

    def commit(self, end: dict) -> None:
        pass

    # -- helpers ---------------------------------------------------------------
    def _list_shards(self) -> list[str]:
        shards, token = [], None
        while True:
            kwargs = {"NextToken": token} if token else {"StreamName": self.stream_name}
            response = self.client.list_shards(**kwargs)
            shards.extend(s["ShardId"] for s in response["Shards"])
            token = response.get("NextToken")
            if not token:
                return shards

    def _iterator(self, shard_id: str, after: str | None) -> str:
        cached = self._iterators.pop(shard_id, None)
        if cached and cached[0] == after:
            return cached[1]
        kwargs: dict[str, Any] = {"StreamName": self.stream_name, "ShardId": shard_id}
        if after is None:
            kwargs["ShardIteratorType"] = "TRIM_HORIZON"
        else:
            kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=after)
        return self.client.get_shard_iterator(**kwargs)["ShardIterator"]

    def _get_records(
        self, shard_id: str, after: str | None, iterator: str | None, limit: int = GET_RECORDS_LIMIT
    ):
        from botocore.exceptions import ClientError

        for _ in range(3):
            try:
                return self.client.get_records(
                    ShardIterator=iterator or self._iterator(shard_id, after), Limit=limit
                )
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ExpiredIteratorException":
                    raise
                iterator = None  # iterators expire after 5 minutes; make a fresh one
        raise RuntimeError(f"shard {shard_id}: iterator kept expiring")

    def _read_shard(
        self,
        shard_id: str,
        after: str | None,
        budget: int | None = None,
        *,
        batch_has_rows: bool = False,
    ) -> tuple[list[tuple], str | None]:
        """Read what a shard has after ``after``, up to ``budget`` rows (the batch cap).

        The cap counts rows, that is user records. An aggregate that would take the batch
        past it is left for the next batch, unless the batch has no row of this shard yet
        (``batch_has_rows`` says whether rows read ahead are already in it).
        """
        rows: list[tuple] = []
        last = after
        budget = self.max_records_per_shard if budget is None else budget
        try:
            iterator: str | None = self._iterator(shard_id, after)
            while len(rows) < budget:
                limit = min(GET_RECORDS_LIMIT, budget - len(rows))
                response = self._get_records(shard_id, last, iterator, limit)
                records = response["Records"]
                stop = False
                for record in records:
                    if (
                        self.cutoff is not None
                        and record["ApproximateArrivalTimestamp"] > self.cutoff
                    ):
                        stop = True
                        break
                    user_rows = self._rows(shard_id, record)
                    if (rows or batch_has_rows) and len(rows) + len(user_rows) > budget:
                        stop = True
                        break
                    rows.extend(user_rows)
                    last = record["SequenceNumber"]
                if stop:
                    iterator = None  # it points past `last`; rebuild from `last` later
                    break
                iterator = response.get("NextShardIterator")
                if iterator is None:
                    self._drained.add(shard_id)  # closed by a reshard and fully read
                    break
                # kinesalite always reports 0 lag, so a short page is the real signal.
                caught_up = len(records) < limit and not response.get("MillisBehindLatest")
                if caught_up:
                    break
            if iterator is not None:
                self._iterators[shard_id] = (last, iterator)
        except Exception as exc:  # noqa: BLE001 - keep what was read, retry the rest later
            _warn(f"reading {self.stream_name}/{shard_id} failed: {exc}; will retry")
        return rows, last

    def _replay_shard(self, shard_id: str, after: str | None, last: str) -> list[tuple]:
        """Deterministically re-read (after, last] for crash recovery."""
        rows: list[tuple] = []
        target = int(last)
        position = after
        iterator: str | None = self._iterator(shard_id, after)
        while True:
            response = self._get_records(shard_id, position, iterator)
            for record in response["Records"]:
                if int(record["SequenceNumber"]) > target:
                    return rows
                rows.extend(self._rows(shard_id, record))
                position = record["SequenceNumber"]
                if int(position) == target:
                    return rows
            iterator = response.get("NextShardIterator")
            if iterator is None or (
                not response["Records"] and not response.get("MillisBehindLatest")
            ):
                raise RuntimeError(
                    f"shard {shard_id} ended before sequence number {last}: records were trimmed"
                )

    def _rows(self, shard_id: str, record: dict) -> list[tuple]:
        """RAW_SCHEMA rows of one Kinesis record: one per user record it carries."""
        arrival = record["ApproximateArrivalTimestamp"]
        return [
            (data, self.stream_name, shard_id, sequence_number, partition_key, arrival)
            for data, sequence_number, partition_key in user_records(record)
        ]


def user_records(record: dict) -> list[tuple[bytes, str, str | None]]:
    """``(data, sequence_number, partition_key)`` of each user record in a GetRecords record.

    A KPL aggregate gives one per user record, named by ``user_sequence_number``; any
    other record gives itself. So does an aggregate the library cannot take apart whole,
    because a record must never be lost or half read: the library returns one with a bad
    checksum or protobuf as is, but yields nothing for one without user records and stops
    part-way, logging the error, at a partition key index out of range.
    """
    data = bytes(record["Data"])
    sequence_number = record["SequenceNumber"]
    whole = [(data, sequence_number, record.get("PartitionKey"))]
    deaggregate, count_user_records = _kpl_library()
    found = [user["kinesis"] for user in deaggregate(record, data_format="Boto3")]
    if not found or not all(user.get("aggregated") for user in found):
        return whole  # not an aggregate (or one whose checksum or protobuf is bad)
    if len(found) != count_user_records(data):
        return whole
    return [
        (
            base64.b64decode(user["data"]),  # the library re-encodes user data as base64
            user_sequence_number(sequence_number, user["subSequenceNumber"]),
            user["partitionKey"],
        )
        for user in found
    ]


def user_sequence_number(sequence_number: str, index: int) -> str:
    """Name of the ``index``-th user record of the aggregate at ``sequence_number``: sorts
    after it and before the next record of the shard under dedup's zero-padded order."""
    return f"{sequence_number.zfill(SEQUENCE_DIGITS)}.{index:0{SUBSEQUENCE_DIGITS}d}"


_import_lock = threading.Lock()


@functools.cache
def _kpl_library() -> tuple[Callable, Callable[[bytes], int]]:
    """The library's de-aggregator and a count of the user records an aggregate declares.

    Imported on first use, in the reader's own process. Importing it puts its package
    directory first on ``sys.path`` (how its generated protobuf modules find each other);
    that is undone, under a lock because reader threads share ``sys.path``, so its module
    names cannot shadow others later.
    """
    with _import_lock:
        saved = list(sys.path)
        try:
            # The deaggregator first: importing it sets up the path messages_pb2 needs.
            # isort: off
            from aws_kinesis_agg.deaggregator import iter_deaggregate_records
            import aws_kinesis_agg
            from aws_kinesis_agg import messages_pb2

            # isort: on
        finally:
            sys.path[:] = saved
    head, tail = len(aws_kinesis_agg.MAGIC), aws_kinesis_agg.DIGEST_SIZE

    def count_user_records(data: bytes) -> int:
        return len(messages_pb2.AggregatedRecord.FromString(data[head:-tail]).records)

    return iter_deaggregate_records, count_user_records


def to_record_batches(rows: list[tuple]) -> list:
    """Rows as one Arrow batch in RAW_SCHEMA: Spark takes it as is, where tuples would be
    converted value by value in this (single) Python process."""
    if not rows:
        return []
    import pyarrow as pa
    from pyspark.sql.pandas.types import to_arrow_schema

    schema = to_arrow_schema(RAW_SCHEMA, timezone="UTC")
    columns = list(zip(*rows, strict=True))
    arrays = [pa.array(column, type=f.type) for column, f in zip(columns, schema, strict=True)]
    return [pa.RecordBatch.from_arrays(arrays, schema=schema)]


def _warn(message: str) -> None:
    # The reader runs in a JVM-spawned Python process: stderr is what reaches the console.
    print(f"[telcopulse kinesis reader {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr)
