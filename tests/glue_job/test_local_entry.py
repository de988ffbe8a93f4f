"""The local entry's own work beside the batch code (``glue_job.local_entry``)."""

from __future__ import annotations

import json
import subprocess
import sys

# A session of its own: the suite's shared one has forked workers for other tests already.
_WARM_THEN_RUN = """
import json, os
import pyarrow as pa
from glue_job.local_entry import warm_python_workers
from glue_job.spark_conf import build_spark

spark = build_spark("warm-up-test")
warmed = warm_python_workers(spark)

def whose(batches):
    for _ in batches:
        pass
    yield pa.RecordBatch.from_pydict({"pid": [os.getpid()]})

later = set()
for _ in range(6):  # one Python task at a time, as a stream's validation runs
    later |= {row.pid for row in spark.range(1).mapInArrow(whose, "pid long").collect()}
print(json.dumps({"slots": spark.sparkContext.defaultParallelism,
                  "warmed": sorted(warmed), "later": sorted(later)}))
"""


def test_warm_python_workers_forks_one_worker_per_slot_that_later_python_tasks_reuse():
    """Every task slot gets a Python worker of its own at once (each validated an event),
    and the Python tasks after it run on those workers: none is forked once the job runs,
    and Spark hands them out in turn (so both are in use, and both stay)."""
    done = subprocess.run(
        [sys.executable, "-c", _WARM_THEN_RUN],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(found["warmed"]) == found["slots"] == 2
    assert found["later"] == found["warmed"]
