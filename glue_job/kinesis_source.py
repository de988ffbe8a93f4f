"""Kinesis reader (ingest -> bronze): a Spark Python Data Source for the local job.

Built on ``SimpleDataSourceStreamReader`` so each record is read once: ``read``
returns the records and the next offset together. Offsets are
``{shard_id: last sequence number read}``; a shard missing from the offset is read
from TRIM_HORIZON, so shards added by a reshard are picked up as they appear.
In production Glue's own Kinesis connector replaces this module.
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from pyspark.sql.datasource import DataSource, SimpleDataSourceStreamReader
from pyspark.sql.streaming.datasource import SupportsTriggerAvailableNow

from glue_job.schemas import RAW_SCHEMA

SOURCE_NAME = "telcopulse_kinesis"
GET_RECORDS_LIMIT = 10_000  # the Kinesis API maximum per call


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
        self.max_records_per_shard = int(options.get("maxrecordspershard") or 40_000)
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
                self._read_shard(shard_id, position, budget) if budget > 0 else ([], position)
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
        self, shard_id: str, after: str | None, budget: int | None = None
    ) -> tuple[list[tuple], str | None]:
        """Read what a shard has after ``after``, up to ``budget`` records (the batch cap)."""
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
                    rows.append(self._row(shard_id, record))
                    last = record["SequenceNumber"]
                iterator = response.get("NextShardIterator")
                if iterator is None:
                    self._drained.add(shard_id)  # closed by a reshard and fully read
                    break
                if stop:
                    iterator = None  # it points past the cutoff; rebuild from `last` later
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
                rows.append(self._row(shard_id, record))
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

    def _row(self, shard_id: str, record: dict) -> tuple:
        return (
            bytes(record["Data"]),
            self.stream_name,
            shard_id,
            record["SequenceNumber"],
            record.get("PartitionKey"),
            record["ApproximateArrivalTimestamp"],
        )


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
