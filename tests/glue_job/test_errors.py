"""The one line a failed stream job stops with (glue_job.errors), from its error text."""

from __future__ import annotations

from glue_job.errors import disk_full_path, root_cause, stream_failure

# Shortened from a real run: the lake's tmpfs filled while batch 1 wrote silver.
DISK_FULL = """[STREAM_FAILED] Query [id = a6, runId = 0b] terminated with exception: \
[FOREACH_BATCH_USER_FUNCTION_ERROR] An error occurred in the user provided function in \
foreach batch sink. Reason: An exception was raised by the Python Proxy. Return Message: \
Traceback (most recent call last):
  File "/work/main/glue_job/lake.py", line 197, in _save
    .parquet(self.path(table))
py4j.protocol.Py4JJavaError: An error occurred while calling o1173.parquet.
: org.apache.spark.SparkException: [TASK_WRITE_FAILED] Task failed while writing rows to \
file:/data/home/lake/silver/_temporary/0/_temporary/attempt_2026_0016_m_000000_14/\
event_date=2026-12-04/commit=1/part-00000-84.c000.snappy.parquet. SQLSTATE: 58030
\tat org.apache.spark.sql.errors.QueryExecutionErrors$.taskFailedWhileWritingRowsError
Caused by: org.apache.hadoop.fs.FSError: java.io.IOException: No space left on device
\tat org.apache.hadoop.fs.RawLocalFileSystem$LocalFSFileOutputStream.write
Caused by: java.io.IOException: No space left on device
\tat java.base/java.io.FileOutputStream.writeBytes(Native Method)
"""

PYTHON_BUG = """[STREAM_FAILED] Query [id = a6] terminated with exception: \
[FOREACH_BATCH_USER_FUNCTION_ERROR] An error occurred in the user provided function in \
foreach batch sink. Reason: An exception was raised by the Python Proxy. Return Message: \
Traceback (most recent call last):
  File "/work/main/glue_job/batch.py", line 230, in _process
    self._write_layers(raw, validated, verdicts, batch_id, started)
KeyError: 'signal_dbm'

\tat py4j.Protocol.getReturnValue(Protocol.java:476)
Caused by: py4j.Py4JException: An exception was raised by the Python Proxy.
"""


def test_the_root_cause_is_the_innermost_exception_that_is_not_a_wrapper():
    assert root_cause(DISK_FULL) == "java.io.IOException: No space left on device"
    assert root_cause(PYTHON_BUG) == "KeyError: 'signal_dbm'"
    assert root_cause("\n  something odd happened  \n") == "something odd happened"
    assert root_cause("") == "no details"
    assert len(root_cause("ValueError: " + "x" * 1000)) == 300


def test_a_full_disk_names_the_table_directory_being_written():
    assert disk_full_path(DISK_FULL) == "/data/home/lake/silver"
    assert disk_full_path("OSError: [Errno 28] No space left on device") == ""
    assert disk_full_path(PYTHON_BUG) is None


def test_the_line_says_what_happened_to_the_batch_and_what_to_do():
    assert stream_failure(DISK_FULL, 7, "/data/home/lake") == (
        "stream job stopped: no space left on device writing /data/home/lake/silver "
        "(batch 7). Nothing of batch 7 is visible and nothing is lost: free some space and "
        "run `telcopulse stream` again, which resumes with batch 7"
    )
    journal = stream_failure("OSError: [Errno 28] No space left on device", 3, "/lake")
    assert journal.startswith("stream job stopped: no space left on device writing /lake ")
    assert stream_failure(PYTHON_BUG, 2, "/lake") == (
        "stream job failed in batch 2: KeyError: 'signal_dbm'"
    )
    assert stream_failure(PYTHON_BUG, None, "/lake").startswith(
        "stream job failed in the running batch: "
    )
    assert "\n" not in stream_failure(DISK_FULL + PYTHON_BUG, 1, "/lake")
