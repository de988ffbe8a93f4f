"""Transforms (bronze -> silver/quarantine -> gold): pure DataFrame -> DataFrame functions.

Used unchanged by the local job and the Glue entry. They touch no paths, no
Kinesis and no clock: the caller passes the batch's ingest time in.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime

import pyarrow as pa
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from glue_job.contract import SIGNAL_BANDS, load_aliases, validate_payload
from glue_job.schemas import (
    BRONZE_SCHEMA,
    EVENT_SCHEMA,
    OPERATOR_MINUTE_SCHEMA,
    POSTAL_STATUS_MINUTE_SCHEMA,
    QUARANTINE_SCHEMA,
    SILVER_SCHEMA,
    VALIDATED_SCHEMA,
)
from glue_job.tables import BAND_COLUMNS

EVENT_KEY = "event_key"


def validate_records(raw: DataFrame, ingest_time: datetime) -> DataFrame:
    """Raw stream rows -> one row per record with its bronze columns, reasons and typed event.

    Never drops a row: a record that cannot even be inspected gets a reason too.
    """
    ingest_time = ingest_time.astimezone(UTC)
    arrow_schema = pa.schema(
        [pa.field(f.name, _arrow_type(f.dataType), nullable=True) for f in VALIDATED_SCHEMA.fields]
    )

    def validate_batches(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        aliases = load_aliases()
        for batch in batches:
            columns = batch.to_pydict()
            yield pa.RecordBatch.from_pylist(
                [_validate_row(columns, i, ingest_time, aliases) for i in range(batch.num_rows)],
                schema=arrow_schema,
            )

    return raw.mapInArrow(validate_batches, VALIDATED_SCHEMA)


def _validate_row(columns: dict, i: int, ingest_time: datetime, aliases: dict) -> dict:
    data: bytes | None = columns["data"][i]
    payload, payload_b64 = _decode(data)
    try:
        verdict = validate_payload(data, ingest_time, aliases)
    except Exception as exc:  # noqa: BLE001 - a record must never crash the batch
        reasons, event, hint = [f"validation_error_{type(exc).__name__}"], None, None
    else:
        reasons, event, hint = verdict.reasons, verdict.event, verdict.event_id
    row = {
        "payload": payload,
        "payload_base64": payload_b64,
        "stream_name": columns["stream_name"][i],
        "shard_id": columns["shard_id"][i],
        "sequence_number": columns["sequence_number"][i],
        "partition_key": columns["partition_key"][i],
        "arrival_time": columns["arrival_time"][i],
        "ingest_time": ingest_time,
        "ingest_date": ingest_time.date(),
        "ingest_hour": ingest_time.hour,
        "reasons": reasons,
        "event_id_hint": hint,
    }
    for field in EVENT_SCHEMA.fields:
        row[field.name] = event.get(field.name) if event else None
    return row


def _decode(data: bytes | None) -> tuple[str | None, str | None]:
    """Bronze keeps every byte: UTF-8 text as is, anything else also base64-encoded."""
    if data is None:
        return None, None
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="replace"), base64.b64encode(data).decode("ascii")


def _arrow_type(spark_type) -> pa.DataType:
    name = spark_type.typeName()
    simple = {
        "string": pa.string(),
        "binary": pa.binary(),
        "integer": pa.int32(),
        "long": pa.int64(),
        "double": pa.float64(),
        "date": pa.date32(),
        "timestamp": pa.timestamp("us", tz="UTC"),
    }
    if name == "array":
        return pa.list_(_arrow_type(spark_type.elementType))
    return simple[name]


def _select(df: DataFrame, schema) -> DataFrame:
    return df.select(*[F.col(f.name).cast(f.dataType).alias(f.name) for f in schema.fields])


def to_bronze(validated: DataFrame) -> DataFrame:
    """Every record received, byte for byte, with stream metadata and ingest time."""
    return _select(validated, BRONZE_SCHEMA)


def to_quarantine(validated: DataFrame) -> DataFrame:
    """Every record that failed validation, with the raw payload and all reason codes."""
    failed = validated.where(F.size("reasons") > 0).withColumn("event_id", F.col("event_id_hint"))
    return _select(failed, QUARANTINE_SCHEMA)


def event_key(column: str = "event_id"):
    """64-bit key of an event id: what the dedup index stores instead of the id itself."""
    return F.xxhash64(F.col(column))


def first_arrivals(validated: DataFrame) -> DataFrame:
    """Valid events, one per event_id: the first to arrive within this batch wins."""
    valid = validated.where(F.size("reasons") == 0)
    arrival_order = Window.partitionBy("event_id").orderBy(
        F.col("arrival_time").asc(),
        F.col("shard_id").asc(),
        # Sequence numbers have up to 128 digits: compare them as zero-padded text.
        F.lpad("sequence_number", 128, "0").asc(),
    )
    return (
        valid.withColumn("_rank", F.row_number().over(arrival_order))
        .where(F.col("_rank") == 1)
        .drop("_rank")
        .withColumn(EVENT_KEY, event_key())
    )


def to_silver(first: DataFrame, seen_keys: DataFrame) -> DataFrame:
    """Drop events already in silver (``seen_keys`` has one ``event_key`` column)."""
    fresh = first.join(F.broadcast(seen_keys), on=EVENT_KEY, how="left_anti")
    return _select(fresh.withColumn("event_date", F.to_date("event_time")), SILVER_SCHEMA)


def _minute(df: DataFrame) -> DataFrame:
    return df.withColumn("minute", F.date_trunc("minute", "event_time"))


def _band_counts() -> list:
    """One count per signal band; each band is [its floor, the floor of the band above)."""
    counts, ceiling = [], None
    for (_, floor), name in zip(SIGNAL_BANDS, BAND_COLUMNS, strict=True):
        in_band = F.col("signal_dbm") >= F.lit(floor)
        if ceiling is not None:
            in_band = in_band & (F.col("signal_dbm") < F.lit(ceiling))
        counts.append(F.count(F.when(in_band, 1)).alias(name))
        ceiling = floor
    return counts


def to_operator_minute(silver: DataFrame) -> DataFrame:
    """Mergeable partials per (minute, operator): sums and counts, never averages."""
    grouped = (
        _minute(silver)
        .groupBy("minute", "operator")
        .agg(
            F.count(F.lit(1)).alias("events"),
            F.sum("signal_dbm").alias("signal_sum"),
            F.count("signal_dbm").alias("signal_count"),
            F.min("signal_dbm").alias("signal_min"),
            F.max("signal_dbm").alias("signal_max"),
            *_band_counts(),
            F.sum("precision_m").alias("precision_sum"),
            F.count("precision_m").alias("precision_count"),
        )
    )
    return _select(grouped.withColumn("event_date", F.to_date("minute")), OPERATOR_MINUTE_SCHEMA)


def to_postal_status_minute(silver: DataFrame) -> DataFrame:
    """Mergeable partials per (minute, postal code, status), with coordinate sums for centroids."""
    has_position = F.col("latitude").isNotNull() & F.col("longitude").isNotNull()
    grouped = (
        _minute(silver)
        .groupBy("minute", "postal_code", "status", "status_label")
        .agg(
            F.count(F.lit(1)).alias("events"),
            F.sum("signal_dbm").alias("signal_sum"),
            F.count("signal_dbm").alias("signal_count"),
            F.count(F.when(has_position, 1)).alias("position_count"),
            F.sum(F.when(has_position, F.col("latitude"))).alias("latitude_sum"),
            F.sum(F.when(has_position, F.col("longitude"))).alias("longitude_sum"),
        )
    )
    return _select(
        grouped.withColumn("event_date", F.to_date("minute")), POSTAL_STATUS_MINUTE_SCHEMA
    )
