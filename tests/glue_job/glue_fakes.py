"""Test helper (Glue path): the awsglue API as the Glue entry uses it, faked at its edges.

``forEachBatch`` here retries the way Glue's own does (``awsglue/context.py`` in
awslabs/aws-glue-libs, branch glue-5.0): when the batch function raises, Glue starts the
streaming query again in the same process, so the batch that failed runs again with the
same id and the same records, on the same Python objects, up to ``batchMaxRetries``
times (3 unless set); a batch that succeeds resets the count. Like Glue, it never calls
the batch function with an empty frame.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from datetime import UTC, datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StringType, StructField, StructType, TimestampType

from glue_job import glue_entry

PAYLOAD_COLUMN = "$json$data_infer_schema$_temporary$"  # what Glue names the unparsed record
ARRIVAL = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
STREAM = "telcopulse-events"
GLUE_DEFAULT_BATCH_MAX_RETRIES = 3


def glue_for_each_batch(
    batches: list[DataFrame],
    batch_function: Callable[[DataFrame, int], None],
    options: dict[str, str] | None = None,
    first_batch_id: int = 0,
) -> list[tuple[int, str]]:
    """Run ``batches`` as Glue's forEachBatch would; return each failed attempt's
    (batch id, error). Raises the last error once a batch fails more than
    ``batchMaxRetries`` times in a row."""
    max_retries = int((options or {}).get("batchMaxRetries", GLUE_DEFAULT_BATCH_MAX_RETRIES))
    if not 0 <= max_retries <= 100:
        raise ValueError(
            "Please specify the number of retries as an integer in the range of [0, 100]."
        )
    done = 0  # Spark's commit log: batches before this one never run again
    retries = 0
    failures: list[tuple[int, str]] = []
    while True:
        try:
            for index in range(done, len(batches)):
                frame = batches[index]
                if frame.count() > 0:
                    batch_function(frame, first_batch_id + index)
                done = index + 1
                retries = 0
            return failures
        except Exception as exc:
            failures.append((first_batch_id + done, str(exc).splitlines()[0]))
            retries += 1
            if retries > max_retries:
                raise


def connector_frame(spark: SparkSession, payloads: list[bytes | str], arrival=ARRIVAL):
    """A micro-batch as Glue's Kinesis source hands it to forEachBatch: the payload as
    text in one column (classification json, inferSchema true), plus ``__src_timestamp``."""
    schema = StructType(
        [
            StructField(PAYLOAD_COLUMN, StringType(), True),
            StructField(glue_entry.SOURCE_TIMESTAMP, TimestampType(), True),
        ]
    )
    rows = [(p.decode("utf-8") if isinstance(p, bytes) else p, arrival) for p in payloads]
    return spark.createDataFrame(rows, schema)


class RecordingCloudWatch:
    """A real boto3 CloudWatch client behind botocore's Stubber: every call is checked
    against the service model (a malformed MetricData fails), answered locally, recorded."""

    def __init__(self, region: str) -> None:
        import boto3
        from botocore.stub import Stubber

        self.client = boto3.client(
            "cloudwatch", region_name=region, aws_access_key_id="x", aws_secret_access_key="x"
        )
        self.stubber = Stubber(self.client)
        self.stubber.activate()
        self.calls: list[dict] = []

    def put_metric_data(self, **params):
        self.stubber.add_response("put_metric_data", {}, params)
        self.calls.append(params)
        return self.client.put_metric_data(**params)


class FakeGlue:
    """The awsglue API shape, recording what the entry asked of it (and its metrics)."""

    def __init__(self, spark: SparkSession, batches: list) -> None:
        self.spark = spark
        self.batches = batches
        self.source: dict = {}
        self.batch_options: dict = {}
        self.job: list[tuple] = []
        self.failures: list[tuple[int, str]] = []
        self.cloudwatch: RecordingCloudWatch | None = None

    def install(self, monkeypatch) -> None:
        fake = self

        def cloudwatch_client(region: str) -> RecordingCloudWatch:
            fake.cloudwatch = RecordingCloudWatch(region)
            return fake.cloudwatch

        monkeypatch.setattr(glue_entry, "cloudwatch_client", cloudwatch_client)
        stream_frame = object()  # what from_options returns; forEachBatch must get it back

        class DataFrameReader:
            def from_options(self, connection_type, connection_options, **kwargs):
                fake.source = {"type": connection_type, **connection_options}
                return stream_frame

        class GlueContext:
            def __init__(self, sc) -> None:
                self.spark_session = SparkSession.builder.getOrCreate()
                self.create_data_frame = DataFrameReader()

            def forEachBatch(self, frame, batch_function, options) -> None:
                assert frame is stream_frame
                for required in ("windowSize", "checkpointLocation"):
                    if required not in options:
                        raise Exception(f"Missing {required} argument")  # as Glue does
                fake.batch_options = options
                fake.failures = glue_for_each_batch(fake.batches, batch_function, options)

        class Job:
            def __init__(self, glue_context) -> None:
                assert isinstance(glue_context, GlueContext)

            def init(self, name, args) -> None:
                fake.job.append(("init", name))

            def commit(self) -> None:
                fake.job.append(("commit",))

        def getResolvedOptions(argv, names):
            resolved = {}
            for name in names:
                flag = f"--{name}"
                if flag not in argv:
                    raise RuntimeError(f"argument {flag} is required")
                resolved[name] = argv[argv.index(flag) + 1]
            return resolved

        modules = {
            "awsglue": types.ModuleType("awsglue"),
            "awsglue.context": types.ModuleType("awsglue.context"),
            "awsglue.job": types.ModuleType("awsglue.job"),
            "awsglue.utils": types.ModuleType("awsglue.utils"),
        }
        modules["awsglue.context"].GlueContext = GlueContext
        modules["awsglue.job"].Job = Job
        modules["awsglue.utils"].getResolvedOptions = getResolvedOptions
        for name, module in modules.items():
            monkeypatch.setitem(sys.modules, name, module)
