"""Lake layout (all layers): table locations, partitions and columns, free of Spark.

The one description of every table: the Spark schemas, the Parquet layout, the
DuckDB views and the Glue catalog are all derived from it, and the dashboard
can import it without a JVM.
"""

from __future__ import annotations

from dataclasses import dataclass

from glue_job.contract import SIGNAL_BANDS

BAND_COLUMNS: tuple[str, ...] = tuple(f"signal_{band}" for band, _ in SIGNAL_BANDS)


@dataclass(frozen=True)
class Table:
    name: str  # catalog / view name
    path: str  # under the lake root
    partitions: tuple[str, ...]  # directory levels before batch_id
    columns: tuple[tuple[str, str], ...]  # data columns (name, type) in file order

    @property
    def partition_types(self) -> tuple[tuple[str, str], ...]:
        kinds = {"ingest_date": "date", "ingest_hour": "int", "event_date": "date"}
        return (*((p, kinds[p]) for p in self.partitions), ("batch_id", "long"))

    def file_glob(self, root: str) -> str:
        levels = [f"{p}=*" for p in self.partitions]
        return "/".join([root.rstrip("/"), self.path, *levels, "batch_id=*", "*.parquet"])


_BRONZE = (
    ("payload", "string"),
    ("payload_base64", "string"),
    ("stream_name", "string"),
    ("shard_id", "string"),
    ("sequence_number", "string"),
    ("partition_key", "string"),
    ("arrival_time", "timestamp"),
    ("ingest_time", "timestamp"),
)

EVENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("event_id", "string"),
    ("event_time", "timestamp"),
    ("operator", "string"),
    ("network", "string"),
    ("status", "int"),
    ("status_label", "string"),
    ("signal_dbm", "double"),
    ("precision_m", "double"),
    ("latitude", "double"),
    ("longitude", "double"),
    ("postal_code", "string"),
    ("device_id", "string"),
    ("provider", "string"),
    ("activity", "string"),
    ("speed_mps", "double"),
    ("satellites", "int"),
)

BRONZE = Table("bronze", "bronze", ("ingest_date", "ingest_hour"), _BRONZE)
SILVER = Table(
    "silver",
    "silver",
    ("event_date",),
    (*EVENT_COLUMNS, ("arrival_time", "timestamp"), ("ingest_time", "timestamp")),
)
QUARANTINE = Table(
    "quarantine",
    "quarantine",
    ("ingest_date",),
    (
        ("payload", "string"),
        ("payload_base64", "string"),
        ("reasons", "array<string>"),
        ("event_id", "string"),
        ("shard_id", "string"),
        ("sequence_number", "string"),
        ("arrival_time", "timestamp"),
        ("ingest_time", "timestamp"),
    ),
)
OPERATOR_MINUTE = Table(
    "gold_operator_minute",
    "gold/operator_minute",
    ("event_date",),
    (
        ("minute", "timestamp"),
        ("operator", "string"),
        ("events", "long"),
        ("signal_sum", "double"),
        ("signal_count", "long"),
        ("signal_min", "double"),
        ("signal_max", "double"),
        *((name, "long") for name in BAND_COLUMNS),
        ("precision_sum", "double"),
        ("precision_count", "long"),
    ),
)
POSTAL_STATUS_MINUTE = Table(
    "gold_postal_status_minute",
    "gold/postal_status_minute",
    ("event_date",),
    (
        ("minute", "timestamp"),
        ("postal_code", "string"),
        ("operator", "string"),
        ("status", "int"),
        ("status_label", "string"),
        ("events", "long"),
        ("signal_sum", "double"),
        ("signal_count", "long"),
        ("position_count", "long"),
        ("latitude_sum", "double"),
        ("longitude_sum", "double"),
    ),
)
OPS = Table(
    "ops",
    "_ops",
    (),
    (
        ("batch_start", "timestamp"),
        ("batch_end", "timestamp"),
        ("records_read", "long"),
        ("bronze_rows", "long"),
        ("silver_rows", "long"),
        ("quarantine_rows", "long"),
        ("duplicates", "long"),
        ("operator_minute_rows", "long"),
        ("postal_status_minute_rows", "long"),
        ("max_event_time", "timestamp"),
        ("max_arrival_time", "timestamp"),
        ("source_lag_seconds", "double"),
        ("duration_seconds", "double"),
    ),
)

TABLES: dict[str, Table] = {
    t.name: t for t in (BRONZE, SILVER, QUARANTINE, OPERATOR_MINUTE, POSTAL_STATUS_MINUTE, OPS)
}
