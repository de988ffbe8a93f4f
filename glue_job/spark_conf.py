"""Spark settings (stream job): the one list both entry points apply.

The local entry applies all of it; the Glue entry applies the part that a Glue
job may set and that keeps results identical (``GLUE_SPARK_CONF``). Free of
Spark 4-only imports, so the Glue entry (Spark 3.5) can import it.
"""

from __future__ import annotations

SPARK_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "2",
    "spark.sql.session.timeZone": "UTC",
    # Explicit, so Spark 3.5 (Glue, default off) and 4.x (default on) agree.
    "spark.sql.ansi.enabled": "true",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    # Standard Parquet timestamps (UTC-adjusted micros) rather than legacy INT96.
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.streaming.metricsEnabled": "false",
    "spark.sql.sources.partitionOverwriteMode": "static",
    "spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs": "false",
    # Task output goes straight to its batch directory; readers never see uncommitted batches.
    "spark.hadoop.mapreduce.fileoutputcommitter.algorithm.version": "2",
    "spark.driver.memory": "1g",
    "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
    "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
}

# Left to Glue: its UI and metrics, driver memory and JVM options come with the worker type,
# and shuffle partitions are sized for local[2] only.
_GLUE_MANAGED = (
    "spark.ui.",
    "spark.driver.",
    "spark.executor.",
    "spark.sql.shuffle.partitions",
    "spark.sql.streaming.metricsEnabled",
)
GLUE_SPARK_CONF = {
    key: value for key, value in SPARK_CONF.items() if not key.startswith(_GLUE_MANAGED)
}
