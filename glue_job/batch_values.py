"""A batch's own values (all layers) as columns that keep Spark's generated code the same
from batch to batch.

Spark writes a number, date or timestamp literal (``F.lit(7)``) into the Java code it
generates for a query, and caches compiled code by its text. So every batch, whose commit id
and ingest time differ from the last one's, compiled its projections and writes anew:
26 classes for a batch of 400 records (Spark's ``CodegenMetrics``), and Janino's compiling
was a fifth of the stream job's JVM samples in Java Flight Recorder at 200 events/s.

Here the value travels as the text argument of ``reflect``
(``java.lang.String.valueOf``), which Spark keeps in the plan as an object the generated
code refers to: ``reflect`` is evaluated without code generation and never folded into a
literal (Spark's ``CallMethodViaReflection``, nondeterministic and ``CodegenFallback`` on
Spark 3.5 and 4). A cast turns the text back into the exact value. The code is then the same
for every batch and comes from Spark's code cache, which ``spark.sql.codegen.cache.maxEntries``
(``glue_job.spark_conf``) makes large enough to hold a batch's classes.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from pyspark.sql import Column
from pyspark.sql import functions as F

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _text(value: int) -> str:
    return f"reflect('java.lang.String', 'valueOf', '{int(value)}')"


def batch_value(value: int | date | datetime) -> Column:
    """``value`` as a column, compiled once for all batches: a timestamp for a datetime
    (taken in UTC, to the microsecond), a date for a date, a bigint for an int."""
    if isinstance(value, datetime):
        micros = (value.astimezone(UTC) - _EPOCH) // timedelta(microseconds=1)
        return F.expr(f"timestamp_micros(cast({_text(micros)} AS BIGINT))")
    if isinstance(value, date):
        days = (value - _EPOCH.date()).days
        return F.expr(f"date_from_unix_date(cast({_text(days)} AS INT))")
    return F.expr(f"cast({_text(value)} AS BIGINT)")
