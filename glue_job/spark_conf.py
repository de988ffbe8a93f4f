"""Spark settings (stream job): the one list both entry points apply, and the local session.

The local entry applies all of it; the Glue entry applies the part that a Glue
job may set and that keeps results identical (``GLUE_SPARK_CONF``). Free of
Spark 4-only imports, so the Glue entry (Spark 3.5) can import it, and so can the
tests that run the Glue path on Glue's own Spark.
"""

from __future__ import annotations

import os
import sys
import time

SPARK_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "2",
    "spark.sql.session.timeZone": "UTC",
    # Explicit, so Spark 3.5 (Glue, default off) and 4.x (default on) agree.
    "spark.sql.ansi.enabled": "true",
    # decode() replaces bytes that are not UTF-8, as Spark 3.5 does, instead of failing
    # (bronze keeps such a record's bytes as base64 too).
    "spark.sql.legacy.codingErrorAction": "true",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    # Standard Parquet timestamps (UTC-adjusted micros) rather than legacy INT96.
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.streaming.metricsEnabled": "false",
    # Spark 4 records the Python call site of every Column and DataFrame call for error
    # messages: a stack walk and several py4j round trips each, "a non-trivial performance
    # overhead because of the stack trace collection" (Spark's own description of this
    # static setting). A batch builds its plans from a few thousand such calls. Off, an error
    # still names the expression and the plan, not the Python line. Measured on Spark 4.3,
    # 1,000 of each on a loaded machine: col 0.7-1.2 ms -> 0.2 ms, + 0.9-1.0 ms -> 0.1 ms,
    # alias and cast 0.8 ms -> 0.1-0.2 ms. Spark 3.5 (Glue) has no such setting.
    "spark.python.sql.dataFrameDebugging.enabled": "false",
    # Spark caches the classes it compiles for a query's generated code, keyed by the code's
    # text, 100 of them by default across four segments; a batch compiles about 50 distinct
    # ones, so the cache turned over and every batch compiled again (26 classes a batch of
    # 400 records; still 36 with the batch's values kept out of the code, 12 with this
    # setting alone). With room for 1,000 and those values kept out (glue_job.batch_values),
    # a warm batch compiles none. Static: set when the session starts (both entries do).
    "spark.sql.codegen.cache.maxEntries": "1000",
    # Spark's status store keeps the last 1,000 jobs, stages and SQL runs even with the UI
    # off, and a batch runs a dozen of each: a long-running job's heap carried their plans
    # and metrics (115,905 SQLPlanMetric objects after 8 minutes). Nothing here reads them.
    "spark.ui.retainedJobs": "100",
    "spark.ui.retainedStages": "100",
    "spark.sql.ui.retainedExecutions": "50",
    # With simplified tracebacks on (the default), Spark starts a second Python worker
    # daemon for the job's Arrow function; off, one daemon serves both (measured: a second
    # or two off the first batch on two loaded cores).
    "spark.sql.execution.pyspark.udf.simplifiedTraceback.enabled": "false",
    # A batch's cached verdicts live for seconds: compressing them costs more than it saves.
    "spark.sql.inMemoryColumnarStorage.compressed": "false",
    "spark.sql.sources.partitionOverwriteMode": "static",
    "spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs": "false",
    # Task output goes straight to its batch directory; readers never see uncommitted batches.
    "spark.hadoop.mapreduce.fileoutputcommitter.algorithm.version": "2",
    # The heap grows to 1 GB only for batches of a few hundred thousand records (a backlog);
    # the serial collector gives memory back once they are done (the free ratios) and has no
    # concurrent GC threads competing with the job for two cores. With a smaller code cache
    # and thread stacks, `telcopulse up` stays within 2.5 GB resident (bench/results.md).
    # Only the C1 compiler (TieredStopAtLevel=1): C2's compile threads take a core for the
    # first tens of seconds of every start. Measured on two cores (bench.stream_bench, 400,000
    # queued events on 2 shards): first batch 12.0 s instead of 15.0 s, steady drain
    # 8,490 events/s against 7,975 with C2; a batch's work is mostly Python and I/O.
    "spark.driver.memory": "1g",
    "spark.driver.extraJavaOptions": (
        "-Duser.timezone=UTC -XX:+UseSerialGC -XX:ReservedCodeCacheSize=96m -Xss512k "
        "-XX:MinHeapFreeRatio=10 -XX:MaxHeapFreeRatio=30 -XX:TieredStopAtLevel=1"
    ),
    "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
}

# glibc's malloc gives each thread that allocates at once an arena of its own, up to eight
# per core (mallopt(3), M_ARENA_MAX: "the more arenas you have, the lower the per-thread
# contention, but the higher the memory usage"), and rarely gives an arena's freed memory
# back. The local JVM's many threads kept a few hundred MB resident that no Java measure
# counts (its native memory tracking stayed at 808 MB while its resident set grew 160 MB
# past it in 15 minutes at 2,000 events/s). With two arenas the JVM stayed at 850 MB from
# the 12th minute of an hour at that rate, and the dashboard's memory stopped climbing
# (docs/reliability.md, the soak).
# Blocks of 1 MB and more are mapped for themselves and unmapped when freed
# (M_MMAP_THRESHOLD). Left alone, glibc raises that threshold to the size of each mapped
# block freed, up to 32 MB, and from then on carves such blocks from the heap, which it
# returns only from the top. The dedup index copies its hour of keys each batch (an array
# of up to 58 MB at 2,000 events/s). Replaying its inserts at that rate (SeenEvents alone,
# 3,700 keys a batch), the process held 57 MB more than its index 29 minutes into the
# second hour, and 37-57 MB more over the next 80 minutes; with the threshold fixed, 0.3
# MB more, for about 1.3 ms more system time a batch. Setting the threshold also turns the
# raising off (the GNU C Library manual, "Malloc Tunable Parameters"; mallopt(3) gives the
# 32 MB ceiling on 64-bit systems).
# Set for each process `telcopulse up` starts and for the JVM ``build_spark`` starts; a
# value already in the environment wins.
NATIVE_MEMORY_ENV = {"MALLOC_ARENA_MAX": "2", "MALLOC_MMAP_THRESHOLD_": str(2**20)}

# Left to Glue: its UI and metrics, driver memory and JVM options come with the worker type,
# and shuffle partitions are sized for local[2] only. Spark 4's DataFrame debugging is not
# a setting on Glue's Spark 3.5.
_GLUE_MANAGED = (
    "spark.python.sql.dataFrameDebugging.",
    "spark.ui.",
    "spark.driver.",
    "spark.executor.",
    "spark.sql.shuffle.partitions",
    "spark.sql.streaming.metricsEnabled",
    "spark.sql.ui.",
)
# Glue's S3 file system (EMRFS, for s3:// paths): a throttled request (503 Slow Down) is
# retried by EMRFS's own configuration, not by the job: more attempts than the default 15
# with its exponential backoff, and the AIMD strategy, which slows the request rate down to
# what S3 accepts ("Retry Amazon S3 requests with EMRFS", Amazon EMR Release Guide; AIMD from
# EMR 6.4). Set through the Hadoop configuration, as the EMR guide's runtime option; whether
# Glue's EMRFS honours them is for AWS to show (docs/aws.md).
GLUE_S3_RETRIES = {
    "spark.hadoop.fs.s3.maxRetries": "30",
    "spark.hadoop.fs.s3.aimd.enabled": "true",
}
GLUE_SPARK_CONF = {
    **{key: value for key, value in SPARK_CONF.items() if not key.startswith(_GLUE_MANAGED)},
    **GLUE_S3_RETRIES,
}


# Classes PySpark calls by their simple name, through py4j's imports, on every use: Spark
# 3.5's functions (``sc._jvm.functions``, each F.col, F.lit, F.sum ...), and both versions'
# Python helpers (``PythonUtils.toSeq`` for each list of columns). py4j's JVM side tries such
# a name against the default view's wildcard imports in turn (org.apache.spark.api.java.*,
# ...api.python.*, ...) and fails a class lookup through every jar for each miss before the
# package that has it; a single import (py4j's ``java_import``) names the class at once.
# Measured on Spark 3.5, 2,000 of ``F.col("x") + F.lit(1)``: 1,954 µs each as is, 496 µs
# with these imports. Each name resolves to the class it did before.
PY4J_SINGLE_IMPORTS = (
    "org.apache.spark.sql.functions",
    "org.apache.spark.api.python.PythonUtils",
    "org.apache.spark.sql.api.python.PythonSQLUtils",
)


def tune_py4j(spark) -> None:
    """Both runtimes (Glue's too): add ``PY4J_SINGLE_IMPORTS`` to the session's py4j view,
    then have it look each name up once (``glue_job.py4j_lookups``)."""
    from py4j.java_gateway import java_import

    from glue_job.py4j_lookups import remember_lookups

    jvm = spark.sparkContext._jvm
    for name in PY4J_SINGLE_IMPORTS:
        java_import(jvm, name)
    remember_lookups(jvm)


def build_spark(app_name: str = "telcopulse", master: str = "local[2]", **conf: str):
    """A local SparkSession with the settings every TelcoPulse Spark process shares."""
    # Workers must run this interpreter: the system python3 lacks pyarrow.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    os.environ["TZ"] = "UTC"
    time.tzset()
    for name, value in NATIVE_MEMORY_ENV.items():  # read by the JVM's C library as it starts
        os.environ.setdefault(name, value)
    from pyspark.sql import SparkSession

    from glue_job import local_fs
    from glue_job.class_archive import java_options

    # The fork-free local file system, when `make install` built it (its docstring).
    settings = {**SPARK_CONF, **local_fs.spark_conf(), **conf}
    if "spark.driver.extraJavaOptions" not in conf and (archive := java_options()):
        # The JVM class archive `make install` built, when there is one (its docstring).
        settings["spark.driver.extraJavaOptions"] += f" {archive}"
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    tune_py4j(spark)
    return spark
