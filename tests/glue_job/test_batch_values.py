"""A batch's own values as columns (glue_job.batch_values): exact, and compiled once.

Spark's ``CodegenMetrics`` counts every class Janino compiles, that is every miss of Spark's
generated-code cache, so a second batch that reuses the first one's code adds none."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from pyspark.sql import functions as F

from glue_job.batch_values import batch_value

pytestmark = pytest.mark.glue  # runs on Glue 5.0's runtime too (Makefile: test)


@pytest.mark.parametrize(
    ("value", "spark_type"),
    [
        (datetime(2026, 12, 7, 7, 30, 1, 123456, tzinfo=UTC), "timestamp"),
        (datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), "timestamp"),
        (date(2026, 2, 28), "date"),
        (date(1960, 1, 1), "date"),
        (0, "bigint"),
        (2**63 - 1, "bigint"),
        (-42, "bigint"),
    ],
)
def test_a_batch_value_is_exactly_the_literal(spark, value, spark_type):
    row = spark.range(1).select(batch_value(value).alias("v"), F.lit(value).alias("lit"))
    assert row.schema["v"].dataType.simpleString() == spark_type
    got = row.collect()[0]
    assert got.v == got.lit


def test_a_second_batch_compiles_none_of_the_code_a_literal_would(spark, tmp_path):
    compiled = spark.sparkContext._jvm.org.apache.spark.metrics.source.CodegenMetrics
    counter = compiled.METRIC_COMPILATION_TIME()

    def classes_compiled_by(value_of, commit: int) -> int:
        before = counter.getCount()
        rows = spark.range(20).select(
            (F.col("id") % 3).alias("k"), value_of(commit).alias("commit_id")
        )
        rows.groupBy("k", "commit_id").count().write.mode("append").parquet(
            str(tmp_path / f"{value_of.__name__}-{commit}")
        )
        return counter.getCount() - before

    def literal(commit):
        return F.lit(commit).cast("long")

    classes_compiled_by(batch_value, 1_000_001)  # the first batch compiles its code
    assert classes_compiled_by(batch_value, 1_000_002) == 0
    assert classes_compiled_by(batch_value, 1_000_003) == 0
    # The same query with a literal compiles again for each new value: what the test detects.
    classes_compiled_by(literal, 2_000_001)
    assert classes_compiled_by(literal, 2_000_002) > 0
    written = spark.read.parquet(str(tmp_path / "batch_value-1000003"))
    assert {r.commit_id for r in written.collect()} == {1_000_003}
