"""Glue stream job entry (ingest -> all layers): Glue's Kinesis connector and ``forEachBatch``.

The AWS twin of ``glue_job.local_entry`` and the only module that imports ``awsglue``
(inside functions: nothing runs at import time). Each micro-batch is mapped onto the
local reader's ``RAW_SCHEMA`` and handed to the same ``BatchProcessor``, so both
deployments write the same bronze, silver, quarantine, gold and ``_ops`` rows.
``telcopulse deploy`` uploads this file as the job script and the glue_job wheel next to it.

What the connector gives, from the AWS Glue developer guide ("Kinesis connection
parameters", glue-streaming-connections) and public Glue streaming scripts:
- ``classification`` is required for a read; with ``inferSchema`` "false" a ``schema`` is
  required too and the connector parses every payload with it, so a malformed record
  would never reach bronze byte for byte. With ``classification`` "json" and
  ``inferSchema`` "true" the connector parses nothing: the DataFrame handed to each
  batch holds one string column with the record's payload as sent, named
  ``$json$data_infer_schema$_temporary$`` (``$json$data_infer_schema$.temporary$`` in some
  Glue releases), and inference only happens if a script turns that frame into a
  DynamicFrame, which this one never does. Our validator parses it with the contract's
  explicit schema, exactly as locally.
- ``addRecordTimestamp`` "true" adds ``__src_timestamp``, the time the stream received the
  record (Kinesis's approximate arrival time): it becomes ``arrival_time``.
- ``emitConsumerLagMetrics`` "true" publishes ``glue.driver.streaming.maxConsumerLagInMs``
  per batch; ``maxFetchRecordsPerShard`` caps a batch per shard (strict when it is a
  multiple of ``maxRecordPerRead``, 10 000 by default); ``startingPosition`` takes
  "latest", "trim_horizon" or "earliest" and only applies without a checkpoint.
- ``glueContext.forEachBatch(frame=, batch_function=, options={"windowSize": "N seconds",
  "checkpointLocation": ...})`` calls ``batch_function(data_frame, batch_id)``.
That frame carries no shard id, sequence number or partition key, so on AWS bronze's
``shard_id``/``sequence_number`` name a record within its micro-batch (Spark partition
and row id, stable when Glue replays the batch from its checkpoint) rather than Kinesis's
own; de-duplication only needs them unique within a batch.
"""

from __future__ import annotations

import sys
from datetime import timedelta

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, LongType, StringType, TimestampType

from glue_job.batch import BatchProcessor
from glue_job.errors import JobError
from glue_job.lake import ParquetLake
from glue_job.metrics import BatchMetrics
from glue_job.schemas import RAW_SCHEMA
from glue_job.spark_conf import GLUE_SPARK_CONF, tune_py4j

# Job arguments: DefaultArguments in infra/telcopulse.yaml, named like the TELCOPULSE_*
# settings they carry; checkpoint_location, stream_arn, starting_position, kinesis_endpoint_url
# (the partition's own domain, from the template's AWS::URLSuffix) and metrics_namespace are
# Glue-only.
JOB_ARGUMENTS = (
    "JOB_NAME",
    "stream_name",
    "stream_arn",
    "region",
    "lake_uri",
    "trigger_seconds",
    "max_records_per_shard",
    "dedup_horizon_hours",
    "compact_after_batches",
    "compaction_grace_seconds",
    "checkpoint_location",
    "starting_position",
    "kinesis_endpoint_url",
    "metrics_namespace",
)
SOURCE_TIMESTAMP = "__src_timestamp"


def kinesis_options(args: dict[str, str]) -> dict[str, str]:
    """Connection options of Glue's Kinesis source (every value a string, as Glue wants)."""
    return {
        "streamARN": args["stream_arn"],
        "endpointUrl": args["kinesis_endpoint_url"],
        "startingPosition": args["starting_position"].lower(),
        "maxFetchRecordsPerShard": str(int(args["max_records_per_shard"])),
        # No new records, no batch: like the local job, which Spark only triggers on new data.
        "avoidEmptyBatches": "true",
        "emitConsumerLagMetrics": "true",
        "addRecordTimestamp": "true",
        # The payload passes through as text; see the module docstring.
        "classification": "json",
        "inferSchema": "true",
    }


# Glue's forEachBatch restarts the query in this same process when a batch raises, up to
# this many times in a row, so the failed batch runs again with the same id and records
# (``awsglue/context.py`` in awslabs/aws-glue-libs, branch glue-5.0: "batchMaxRetries ...
# The default value is 3", per the GlueContext forEachBatch docs). Set explicitly, not left
# to the default: retrying in place is safe only because every attempt starts from a clean
# slate decided from the lake (``BatchProcessor``), and it turns a transient S3 or
# throttling error into a retried batch instead of a failed job run that waits for a
# restart. Past the limit the job run fails and its alarms fire.
BATCH_MAX_RETRIES = 3


def batch_options(args: dict[str, str]) -> dict[str, str]:
    return {
        "windowSize": f"{float(args['trigger_seconds']):g} seconds",
        "checkpointLocation": args["checkpoint_location"],
        "batchMaxRetries": str(BATCH_MAX_RETRIES),
    }


def to_raw(frame: DataFrame, stream_name: str) -> DataFrame:
    """One Glue Kinesis micro-batch -> the rows the local reader emits (``RAW_SCHEMA``)."""
    fields = {f.name: f for f in frame.schema.fields}
    if SOURCE_TIMESTAMP not in fields:
        raise JobError(
            f"the Kinesis frame has no {SOURCE_TIMESTAMP} column: "
            "set addRecordTimestamp to true in the connection options"
        )
    payloads = [name for name in fields if name != SOURCE_TIMESTAMP]
    if len(payloads) != 1:
        raise JobError(
            f"expected one payload column from Glue's Kinesis source, got {payloads}: "
            "keep classification json with inferSchema true so records arrive unparsed"
        )
    raw = frame.select(
        F.col(f"`{payloads[0]}`").cast("binary").alias("data"),
        F.lit(stream_name).alias("stream_name"),
        F.concat(F.lit("glue-partition-"), F.spark_partition_id().cast("string")).alias("shard_id"),
        F.monotonically_increasing_id().cast("string").alias("sequence_number"),
        F.lit(None).cast("string").alias("partition_key"),
        _arrival_time(fields[SOURCE_TIMESTAMP].dataType).alias("arrival_time"),
    )
    return raw.select(*(F.col(f.name).cast(f.dataType) for f in RAW_SCHEMA.fields))


def _arrival_time(kind):
    """``__src_timestamp`` as a timestamp, whichever way the Glue release types it."""
    column = F.col(SOURCE_TIMESTAMP)
    if isinstance(kind, TimestampType):
        return column
    if isinstance(kind, LongType | DoubleType):
        return F.timestamp_millis(column.cast("long"))
    if isinstance(kind, StringType):
        return F.to_timestamp(column)
    raise JobError(f"unexpected type of {SOURCE_TIMESTAMP}: {kind.simpleString()}")


def cloudwatch_client(region: str):
    """CloudWatch for the batch metrics (boto3 comes with Glue); retries in standard mode."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "cloudwatch", region_name=region, config=Config(retries={"mode": "standard"})
    )


def apply_spark_conf(spark: SparkSession) -> None:
    """The local job's settings that a running Glue session accepts (SQL and Hadoop ones).
    Static ones (the code cache's size) were given to the SparkContext as it started."""
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    for key, value in GLUE_SPARK_CONF.items():
        if key.startswith("spark.hadoop."):
            hadoop.set(key.removeprefix("spark.hadoop."), value)
        elif spark.conf.isModifiable(key):
            spark.conf.set(key, value)


def check_checkpoint(spark: SparkSession, lake: ParquetLake, checkpoint: str) -> None:
    """Refuse to number batches from 0 again over a lake that already has committed batches
    (the processor would skip them as replays): the S3 twin of the local entry's check."""
    committed = lake.last_committed()
    if committed is None:
        return
    jvm = spark.sparkContext._jvm
    offsets = jvm.org.apache.hadoop.fs.Path(checkpoint.rstrip("/") + "/offsets")
    fs = offsets.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not (fs.exists(offsets) and len(fs.listStatus(offsets)) > 0):
        raise JobError(
            f"the lake already holds committed batches (up to #{committed}) but the checkpoint "
            f"{checkpoint} is missing: restore it, or empty the lake before starting over"
        )


def main(argv: list[str] | None = None) -> None:
    """Glue job script: read the stream with Glue's connector, refine each batch into the lake."""
    from awsglue.context import GlueContext
    from awsglue.job import Job
    from awsglue.utils import getResolvedOptions
    from pyspark import SparkConf, SparkContext

    args = getResolvedOptions(sys.argv if argv is None else argv, list(JOB_ARGUMENTS))
    sc = SparkContext.getOrCreate(SparkConf().setAll(list(GLUE_SPARK_CONF.items())))
    glue_context = GlueContext(sc)
    spark = glue_context.spark_session
    apply_spark_conf(spark)
    tune_py4j(spark)
    job = Job(glue_context)
    job.init(args["JOB_NAME"], args)

    lake = ParquetLake(spark, args["lake_uri"])
    check_checkpoint(spark, lake, args["checkpoint_location"])
    processor = BatchProcessor(
        spark,
        lake,
        dedup_horizon=timedelta(hours=int(args["dedup_horizon_hours"])),
        compact_after=int(args["compact_after_batches"]),
        compaction_grace_seconds=float(args["compaction_grace_seconds"]),
    )
    stream_name = args["stream_name"]
    metrics = BatchMetrics(
        cloudwatch_client(args["region"]), args["metrics_namespace"], args["JOB_NAME"]
    )

    def process_batch(frame: DataFrame, batch_id: int) -> None:
        metrics.publish(processor.process_batch(to_raw(frame, stream_name), batch_id))

    records = glue_context.create_data_frame.from_options(
        connection_type="kinesis",
        connection_options=kinesis_options(args),
        transformation_ctx="telcopulse_kinesis",
    )
    glue_context.forEachBatch(
        frame=records, batch_function=process_batch, options=batch_options(args)
    )
    job.commit()


if __name__ == "__main__":
    main()
