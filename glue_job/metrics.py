"""Batch metrics (stream job -> CloudWatch): what each committed batch did, for the alarms.

The Glue entry publishes one set per committed batch in the TelcoPulse namespace, with
the job's name as the dimension. ``infra/telcopulse.yaml`` alarms on them: no batch
committed for N minutes (``BatchesCommitted``, missing data counts as breaching), and the
quarantine share (``RecordsQuarantined / RecordsRead``), TelcoPulse's dead-letter signal.
The local job has no CloudWatch; its Pipeline Health page reads the same figures from
``_ops``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

# metric name -> (the batch's stats key, or None for a constant 1; CloudWatch unit)
BATCH_METRICS: dict[str, tuple[str | None, str]] = {
    "BatchesCommitted": (None, "Count"),
    "RecordsRead": ("records_read", "Count"),
    "RecordsQuarantined": ("quarantine_rows", "Count"),
    "Duplicates": ("duplicates", "Count"),
    "SourceLagSeconds": ("source_lag_seconds", "Seconds"),
    "BatchDurationSeconds": ("duration_seconds", "Seconds"),
}


def batch_metric_data(stats: dict, job_name: str) -> list[dict]:
    """CloudWatch ``MetricData`` for one committed batch (a metric with no value is left out:
    an empty batch has no source lag)."""
    dimensions = [{"Name": "JobName", "Value": job_name}]
    timestamp: datetime | None = stats.get("batch_end")
    data = []
    for name, (key, unit) in BATCH_METRICS.items():
        value = 1 if key is None else stats.get(key)
        if value is None:
            continue
        datum = {"MetricName": name, "Dimensions": dimensions, "Value": float(value), "Unit": unit}
        if timestamp is not None:
            datum["Timestamp"] = timestamp
        data.append(datum)
    return data


class BatchMetrics:
    """Publishes each committed batch's metrics. A failure to publish is logged, never raised:
    the batch is committed by then, and a retry of it would publish nothing new."""

    def __init__(
        self, client, namespace: str, job_name: str, log: Callable[[str], None] = print
    ) -> None:
        self.client, self.namespace, self.job_name, self.log = client, namespace, job_name, log

    def publish(self, stats: dict | None) -> None:
        if stats is None:  # a replay of a committed batch: published when it committed
            return
        try:
            self.client.put_metric_data(
                Namespace=self.namespace, MetricData=batch_metric_data(stats, self.job_name)
            )
        except Exception as exc:  # noqa: BLE001 - metrics must never fail a committed batch
            self.log(
                f"batch {stats.get('batch_id')}: metrics not published ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:200] if str(exc) else ''})"
            )
