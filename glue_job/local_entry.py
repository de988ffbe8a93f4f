"""Local stream job entry (ingest -> all layers): PySpark in local mode reading Kinesis.

The only local module that touches paths, Kinesis and the SparkSession. The
Glue entry does the same with Glue's connector and calls the same
``BatchProcessor``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
from pyspark.errors import StreamingQueryException
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from glue_job.batch import BatchProcessor
from glue_job.checkpoint import mend_checkpoint
from glue_job.defaults import (
    DEFAULT_COMPACT_AFTER,
    DEFAULT_DEDUP_HORIZON_HOURS,
    DEFAULT_GRACE_SECONDS,
    DEFAULT_MAX_RECORDS_PER_SHARD,
    DEFAULT_TRIGGER_SECONDS,
)
from glue_job.errors import JobError, root_cause, stream_failure
from glue_job.kinesis_source import SOURCE_NAME, KinesisDataSource
from glue_job.lake import ParquetLake
from glue_job.schemas import VALIDATION_INPUT
from glue_job.spark_conf import build_spark
from glue_job.transforms import validate_arrow, validated_arrow_schema


def check_checkpoint(lake: ParquetLake, checkpoint: str, log=print) -> None:
    """Mend the checkpoint from the lake's commits, or refuse to start
    (``glue_job.checkpoint``): batch ids never start over on top of committed batches, and
    no batch the lake lacks is taken as done."""
    for repair in mend_checkpoint(checkpoint, lake.last_committed()):
        log(repair)


def warm_python_workers(spark: SparkSession) -> set[int]:
    """Fork now every Python worker validation will ever hold (one per task slot), each
    having validated an event, and return their process ids.

    Spark keeps the Python workers it forked and hands an idle one to each Python task in
    turn; it closes idle workers only after a whole minute without any Python task
    (``PythonWorkerFactory``: ``IDLE_WORKER_TIMEOUT_NS``, one ``lastActivityNs`` for all).
    A stream validates every trigger, so a second worker, forked the one time two Python
    tasks overlapped, stays for the rest of the run: about 100 MB that appeared in the
    stream job, once, at an hour close, in each of three long runs at 2,000 events/s
    (docs/reliability.md). Forked here, the workers are the job's memory from its first
    minute, and are reused from then on. A barrier stage starts its tasks together, and
    its barrier holds each task until all have validated: so each has a worker of its own.
    Done while a long run starts, it also takes the workers' start-up (a fork, and
    validation's imports) off its first batch.
    """
    slots = spark.sparkContext.defaultParallelism
    now = datetime.now(UTC)
    event = {
        "event_id": "warm-up",
        "event_time": now.isoformat(),
        "operator": "Movistar",
        "status": 1,
        "signal_dbm": -70.0,
        "precision_m": 5.0,
        "latitude": 40.4,
        "longitude": -3.7,
        "postal_code": "28001",
    }
    rows = spark.range(0, slots, 1, slots).select(
        F.lit(json.dumps(event).encode()).alias("data"),
        F.lit("warm-up").alias("shard_id"),
        F.col("id").cast("string").alias("sequence_number"),
        F.lit(now).alias("arrival_time"),
    )
    arrow_schema = validated_arrow_schema()

    def validate_together(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pyspark import BarrierTaskContext

        for batch in batches:
            validate_arrow(batch, now, arrow_schema)
        BarrierTaskContext.get().barrier()
        yield pa.RecordBatch.from_pydict({"pid": [os.getpid()]})

    workers = rows.select(*VALIDATION_INPUT).mapInArrow(validate_together, "pid long", barrier=True)
    return {row.pid for row in workers.collect()}


def run_stream(
    *,
    lake_root: str,
    checkpoint: str,
    stream_name: str,
    endpoint_url: str | None,
    region: str,
    trigger_seconds: float = DEFAULT_TRIGGER_SECONDS,
    until_idle: bool = False,
    max_records_per_shard: int = DEFAULT_MAX_RECORDS_PER_SHARD,
    dedup_horizon_hours: int = DEFAULT_DEDUP_HORIZON_HOURS,
    compact_after_batches: int = DEFAULT_COMPACT_AFTER,
    compaction_grace_seconds: float = DEFAULT_GRACE_SECONDS,
    access_key: str | None = None,
    secret_key: str | None = None,
    failure_log: Path | None = None,
    log=None,
) -> int:
    """Run the stream job until stopped (or, with ``until_idle``, until the stream is drained).

    A failed batch stops the job with one ``JobError`` line (``glue_job.errors``); the
    whole trace goes to ``failure_log``. Spark logs only fatal errors meanwhile: every other
    error fails the batch, and so reaches that line and that file."""
    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    spark = build_spark("telcopulse-stream")
    spark.sparkContext.setLogLevel("FATAL")
    lake = ParquetLake(spark, lake_root)
    # The lake's state is read while the stream starts: the checkpoint check, then the
    # processor's state (its Spark jobs), run on a thread of their own while this one
    # registers the source and starts the query, which waits for the check and whose first
    # batch waits for the processor. On two cores the start-up is mostly a chain of waits
    # on the JVM and on Python workers, so the two halves overlap: about 3 s off a start
    # over an existing lake (README, "Start-up").
    checked: Future = Future()

    def prepare() -> BatchProcessor:
        try:
            check_checkpoint(lake, checkpoint, log)
        except BaseException as exc:
            checked.set_exception(exc)
            raise
        checked.set_result(None)
        return BatchProcessor(
            spark,
            lake,
            dedup_horizon=timedelta(hours=dedup_horizon_hours),
            compact_after=compact_after_batches,
            compaction_grace_seconds=compaction_grace_seconds,
            log=log,
        )

    stopping = threading.Event()  # set before Spark stops: a warm-up it cuts short is no news

    def stop_spark() -> None:
        stopping.set()
        spark.stop()

    def warm() -> None:
        try:
            warm_python_workers(spark)
        except Exception as exc:  # noqa: BLE001 - memory planning and speed, not correctness
            if not stopping.is_set():
                log(f"Python workers not forked ahead: {root_cause(str(exc))}")

    state = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lake-state")
    processor = _Starting(state.submit(prepare))
    # After the lake's state, while the source starts. Not in a drain: warmed there too,
    # its first batch ended 0.2-3.2 s sooner (three alternating pairs, 2026-12-07), but
    # under the test suite's load a drain's Python worker then failed to connect back to
    # Spark (3 errors in one fresh-clone run), so drains start their workers on demand.
    if not until_idle:
        state.submit(warm)
    state.shutdown(wait=False)
    spark.dataSource.register(KinesisDataSource)

    reader = (
        spark.readStream.format(SOURCE_NAME)
        .option("streamName", stream_name)
        .option("region", region)
        .option("maxRecordsPerShard", str(max_records_per_shard))
    )
    for key, value in {
        "endpointUrl": endpoint_url,
        "accessKey": access_key,
        "secretKey": secret_key,
    }.items():
        if value:
            reader = reader.option(key, value)
    writer = (
        reader.load()
        .writeStream.foreachBatch(processor)
        .option("checkpointLocation", checkpoint)
        .queryName("telcopulse")
    )
    if until_idle:
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=f"{trigger_seconds} seconds")

    try:
        checked.result()  # the checkpoint is mended (or refused) before Spark reads it
    except BaseException:
        stop_spark()
        raise
    query = writer.start()
    stop_requested = []

    def request_stop(signum, _frame):
        stop_requested.append(signum)

    # Before saying it runs: from that line on, Ctrl-C stops the job between batches.
    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    log(
        f"stream job running: {stream_name} -> {lake_root} "
        f"({'until idle' if until_idle else f'every {trigger_seconds:g}s'})"
    )
    try:
        while query.isActive:
            if stop_requested:
                _stop_between_triggers(query)
                log("stream job stopped cleanly")
                break
            query.awaitTermination(0.5)
        if query.exception() is not None:
            raise query.exception()
        processor.ready()  # a drained stream may never have asked for it: its error shows
    except StreamingQueryException as exc:
        text = str(exc)
        message = stream_failure(text, processor.failed_batch, lake_root)
        if failure_log is not None and _save_trace(failure_log, text):
            message += f" (full trace: {failure_log})"
        raise JobError(message) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        stop_spark()
    return 0


class _Starting:
    """The ``foreachBatch`` function while the processor reads the lake's state: a batch
    waits for it, and then runs in it."""

    def __init__(self, future: Future) -> None:
        self.future = future

    def ready(self) -> BatchProcessor:
        return self.future.result()

    def __call__(self, raw, batch_id: int) -> None:
        self.ready()(raw, batch_id)

    @property
    def failed_batch(self) -> int | None:
        done = self.future.done() and not self.future.cancelled()
        return self.future.result().failed_batch if done and not self.future.exception() else None


def _stop_between_triggers(query, timeout: float = 60) -> None:
    """Stopping mid-batch is safe (writes are batch-keyed) but stopping between is cleaner."""
    deadline = time.monotonic() + timeout
    while query.isActive and query.status.get("isTriggerActive") and time.monotonic() < deadline:
        time.sleep(0.1)
    query.stop()


def _save_trace(path: Path, text: str) -> bool:
    """Keep a failure's whole text; False when it cannot be written (a full disk, say)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}\n{text}\n")
    except OSError:
        return False
    return True
