"""Glue entry against a fake of the awsglue API: the same lake as the local job writes.

Only the source and the sink's surroundings are fake: ``awsglue`` (GlueContext with
``create_data_frame.from_options`` and ``forEachBatch``, ``getResolvedOptions``, ``Job``)
hands static DataFrames in the Glue Kinesis connector's shape (one text column with the
payload as sent, plus ``__src_timestamp``), and everything after that is the real entry,
the real ``BatchProcessor`` and real Parquet, read back with Spark and DuckDB.
"""

from __future__ import annotations

import subprocess
import sys
import types

import pytest
from glue_fakes import ARRIVAL, PAYLOAD_COLUMN, STREAM, FakeGlue, connector_frame
from helpers import PROJECT_ROOT, build_lake, event
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StringType, StructField, StructType
from pyspark.testing import assertDataFrameEqual

from backend.engine import DuckDBEngine
from backend.queries import run_kpi
from glue_job import glue_entry
from glue_job.errors import JobError
from glue_job.lake import ParquetLake
from glue_job.spark_conf import PY4J_SINGLE_IMPORTS

pytestmark = pytest.mark.glue  # runs on Glue 5.0's runtime too (Makefile: test)

GLUE_RUNTIME = PROJECT_ROOT / "infra" / "glue-5.0-runtime.txt"
BAD_RECORDS = [
    "not json",
    event(event_id="bad-operator", operator="  "),
    event(event_id="bad-signal", signal_dbm=-10.0),
]


def job_argv(lake, checkpoint) -> list[str]:
    values = {
        "JOB_NAME": "telcopulse-stream",
        "stream_name": STREAM,
        "stream_arn": f"arn:aws:kinesis:eu-west-1:123456789012:stream/{STREAM}",
        "region": "eu-west-1",
        "lake_uri": str(lake),
        "trigger_seconds": "60",
        "max_records_per_shard": "40000",
        "dedup_horizon_hours": "24",
        "compact_after_batches": "30",
        "compaction_grace_seconds": "900",
        "checkpoint_location": str(checkpoint),
        "starting_position": "TRIM_HORIZON",
        "kinesis_endpoint_url": "https://kinesis.eu-west-1.amazonaws.com",
        "metrics_namespace": "TelcoPulse",
    }
    argv = ["telcopulse_glue_entry.py"]
    for name, value in values.items():
        argv += [f"--{name}", value]
    return argv


@pytest.fixture(scope="module")
def batches(csv_records):
    half = len(csv_records) // 2
    # Batch 1 repeats a record of batch 0: a duplicate across batches.
    return [csv_records[:half] + BAD_RECORDS, [*csv_records[half:], csv_records[0]]]


@pytest.fixture(scope="module")
def run(spark, batches, tmp_path_factory):
    """The Glue entry run once over two batches, with the session's conf knocked off first."""
    root = tmp_path_factory.mktemp("glue-entry")
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    before = {
        "spark.sql.ansi.enabled": spark.conf.get("spark.sql.ansi.enabled"),
        "spark.sql.session.timeZone": spark.conf.get("spark.sql.session.timeZone"),
        "spark.sql.parquet.outputTimestampType": spark.conf.get(
            "spark.sql.parquet.outputTimestampType"
        ),
    }
    spark.conf.set("spark.sql.ansi.enabled", "false")
    spark.conf.set("spark.sql.session.timeZone", "America/New_York")
    spark.conf.set("spark.sql.parquet.outputTimestampType", "INT96")
    hadoop.set("mapreduce.fileoutputcommitter.algorithm.version", "1")
    fake = FakeGlue(spark, [connector_frame(spark, b) for b in batches])
    with pytest.MonkeyPatch.context() as monkeypatch:
        fake.install(monkeypatch)
        glue_entry.main(job_argv(root / "lake", root / "checkpoint"))
    after = {key: spark.conf.get(key) for key in before}
    after["algorithm"] = hadoop.get("mapreduce.fileoutputcommitter.algorithm.version")
    for key in ("fs.s3.maxRetries", "fs.s3.aimd.enabled"):  # EMRFS's throttling retries
        after[key] = hadoop.get(key)
        hadoop.unset(key)
    for key, value in before.items():
        spark.conf.set(key, value)
    return types.SimpleNamespace(lake=root / "lake", root=root, fake=fake, conf=after)


@pytest.fixture(scope="module")
def local_lake(spark, batches, tmp_path_factory):
    """The same records through the local job's path (Kinesis reader rows -> process_batch)."""
    return build_lake(spark, tmp_path_factory.mktemp("local-entry") / "lake", batches)


def read(spark, root, table):
    return ParquetLake(spark, str(root)).read(table)


def test_reads_kinesis_with_explicit_options_and_batches_with_a_window(run):
    assert run.fake.source == {
        "type": "kinesis",
        "streamARN": f"arn:aws:kinesis:eu-west-1:123456789012:stream/{STREAM}",
        "endpointUrl": "https://kinesis.eu-west-1.amazonaws.com",
        "startingPosition": "trim_horizon",
        "maxFetchRecordsPerShard": "40000",
        "avoidEmptyBatches": "true",
        "emitConsumerLagMetrics": "true",
        "addRecordTimestamp": "true",
        "classification": "json",
        "inferSchema": "true",
    }
    assert run.fake.batch_options == {
        "windowSize": "60 seconds",
        "checkpointLocation": str(run.root / "checkpoint"),
        "batchMaxRetries": "3",
    }
    assert run.fake.failures == []
    assert run.fake.job == [("init", "telcopulse-stream"), ("commit",)]


def test_publishes_each_committed_batchs_metrics_for_the_alarms(spark, run):
    """One PutMetricData per committed batch, in the TelcoPulse namespace, by job name; the
    figures are the batch's own _ops row (the stubbed client checks the request's shape)."""
    ops = {r.batch_id: r for r in read(spark, run.lake, "ops").collect()}
    calls = run.fake.cloudwatch.calls
    assert [call["Namespace"] for call in calls] == ["TelcoPulse", "TelcoPulse"]
    for batch_id, call in enumerate(calls):
        sent = {d["MetricName"]: d["Value"] for d in call["MetricData"]}
        row = ops[batch_id]
        assert sent == {
            "BatchesCommitted": 1.0,
            "RecordsRead": row.records_read,
            "RecordsQuarantined": row.quarantine_rows,
            "Duplicates": row.duplicates,
            "SourceLagSeconds": row.source_lag_seconds,
            "BatchDurationSeconds": row.duration_seconds,
        }
        dimensions = {tuple(d["Dimensions"][0].values()) for d in call["MetricData"]}
        assert dimensions == {("JobName", "telcopulse-stream")}
    assert calls[0]["MetricData"][1]["Value"] > 0


def test_a_metrics_failure_never_fails_a_committed_batch():
    from glue_job.metrics import BatchMetrics

    class Refusing:
        def put_metric_data(self, **params):
            raise RuntimeError("Throttling: Rate exceeded")

    said = []
    metrics = BatchMetrics(Refusing(), "TelcoPulse", "job", log=said.append)
    metrics.publish({"batch_id": 7, "records_read": 3})
    metrics.publish(None)  # a skipped replay publishes nothing
    assert said == ["batch 7: metrics not published (RuntimeError: Throttling: Rate exceeded)"]


def test_sets_the_local_jobs_spark_conf_on_the_glue_session(run):
    assert run.conf == {
        "spark.sql.ansi.enabled": "true",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "algorithm": "2",
        "fs.s3.maxRetries": "30",
        "fs.s3.aimd.enabled": "true",
    }


def test_pyspark_finds_the_classes_it_names_by_a_single_import(spark, run):
    """glue_job.spark_conf.PY4J_SINGLE_IMPORTS, on this runtime's session (Glue's too): each
    simple name PySpark uses resolves to the class its wildcard imports found first."""
    jvm = spark.sparkContext._jvm
    for fqn in PY4J_SINGLE_IMPORTS:
        assert getattr(jvm, fqn.rsplit(".", 1)[1])._fqn == fqn
    assert jvm.functions.lit(1).toString() == "1"


def test_silver_gold_and_ops_equal_the_local_jobs(spark, run, local_lake, csv_records):
    assert ParquetLake(spark, str(run.lake)).last_committed() == 1
    stamps = ["arrival_time", "ingest_time"]
    silver = read(spark, run.lake, "silver")
    assertDataFrameEqual(silver.drop(*stamps), read(spark, local_lake, "silver").drop(*stamps))
    assert silver.count() > 0.9 * len(csv_records)
    assert {r.arrival_time for r in silver.select("arrival_time").distinct().collect()} == {
        ARRIVAL.replace(tzinfo=None)  # Spark hands back session-local (UTC) naive times
    }
    for table in ("gold_operator_minute", "gold_postal_status_minute"):
        assertDataFrameEqual(read(spark, run.lake, table), read(spark, local_lake, table))

    counts = ["batch_id", "records_read", "bronze_rows", "silver_rows", "quarantine_rows"]
    counts += ["duplicates", "operator_minute_rows", "postal_status_minute_rows"]
    glue_ops = read(spark, run.lake, "ops").select(*counts)
    assertDataFrameEqual(glue_ops, read(spark, local_lake, "ops").select(*counts))
    assert glue_ops.where("batch_id = 1").first().duplicates == 1


def test_bronze_keeps_every_record_as_sent_and_quarantine_the_reasons(spark, run, local_lake):
    kept = ["payload", "payload_base64", "stream_name"]
    bronze = read(spark, run.lake, "bronze")
    assertDataFrameEqual(bronze.select(*kept), read(spark, local_lake, "bronze").select(*kept))
    assert bronze.where(F.col("payload") == "not json").count() == 1
    # Row ids are unique within each batch, which is all de-duplication needs.
    ids = bronze.groupBy("batch_id", "shard_id", "sequence_number").count()
    assert ids.where("count > 1").count() == 0

    verdicts = ["payload", "reasons", "event_id"]
    quarantine = read(spark, run.lake, "quarantine").select(*verdicts)
    assertDataFrameEqual(quarantine, read(spark, local_lake, "quarantine").select(*verdicts))
    reasons = {r.event_id: list(r.reasons) for r in quarantine.collect()}
    assert reasons["bad-operator"] == ["missing_operator"]
    assert reasons["bad-signal"] == ["out_of_range_signal_dbm"]
    assert reasons[None] == ["malformed_json"]


@pytest.mark.parametrize("kpi", ["kpi_signal", "kpi_precision", "kpi_status"])
def test_gold_kpis_through_sql_equal_the_local_jobs(run, local_lake, kpi):
    from backend.queries import Window

    glue = run_kpi(DuckDBEngine(run.lake), kpi, Window())
    local = run_kpi(DuckDBEngine(local_lake), kpi, Window())
    assert len(glue) > 0
    assert glue.equals(local)


def test_refuses_to_restart_batch_ids_over_a_committed_lake(spark, run, monkeypatch):
    fake = FakeGlue(spark, [])
    fake.install(monkeypatch)
    with pytest.raises(JobError, match=r"committed batches \(up to #1\) but the checkpoint"):
        glue_entry.main(job_argv(run.lake, run.root / "fresh-checkpoint"))
    assert fake.source == {}  # it stopped before reading the stream


def test_arrival_time_from_epoch_millis_and_a_missing_timestamp_is_an_error(spark):
    millis = int(ARRIVAL.timestamp() * 1000)
    schema = StructType(
        [
            StructField("$json$data_infer_schema$.temporary$", StringType()),
            StructField(glue_entry.SOURCE_TIMESTAMP, LongType()),
        ]
    )
    raw = glue_entry.to_raw(spark.createDataFrame([("{}", millis)], schema), STREAM).first()
    assert raw.data == b"{}"
    assert raw.arrival_time == ARRIVAL.replace(tzinfo=None)
    assert raw.stream_name == STREAM

    no_timestamp = spark.createDataFrame([("{}",)], f"`{PAYLOAD_COLUMN}` string")
    with pytest.raises(JobError, match="addRecordTimestamp"):
        glue_entry.to_raw(no_timestamp, STREAM)


def test_importing_the_entry_imports_no_awsglue_and_runs_nothing():
    probe = "import sys, glue_job.glue_entry; assert 'awsglue' not in sys.modules"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]


# Spark 4 only: the Python Data Source API, and the local reader and entry built on it.
SPARK_4_ONLY = ("pyspark.sql.datasource", "glue_job.kinesis_source", "glue_job.local_entry")


def test_the_glue_path_and_its_test_fixtures_import_nothing_spark_4_only():
    """What Glue imports (the entry and everything under it) and what these tests use to
    build their session, in a fresh interpreter: no Spark-4-only module comes along."""
    probe = (
        "import sys; sys.path.insert(0, 'tests'); "
        "import glue_job.glue_entry, glue_job.batch, glue_job.compaction, glue_job.lake, "
        "glue_job.transforms, glue_job.spark_conf, conftest; "
        f"print(sorted(m for m in sys.modules if m.startswith({SPARK_4_ONLY!r})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


def installed_versions(names) -> dict[str, str]:
    from importlib.metadata import version

    return {name: version(name) for name in names}


def test_runs_on_the_projects_spark_4_or_exactly_on_glue_5s_runtime():
    """In .venv-glue the suite runs on Glue 5.0's own versions, not merely on a Spark 3."""
    import pyspark

    pins = dict(
        line.split("==")
        for line in GLUE_RUNTIME.read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    if pyspark.__version__.startswith("4."):
        return  # the project's own stack (.venv)
    assert sys.version_info[:2] == (3, 11)
    assert installed_versions(pins) == pins
