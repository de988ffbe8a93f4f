"""Transforms (bronze -> silver/quarantine -> gold): pure DataFrame -> DataFrame functions.

Used unchanged by the local job and the Glue entry. They touch no paths, no
Kinesis and no clock: the caller passes the batch's ingest time in.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime

import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from glue_job.batch_values import batch_value
from glue_job.contract import (
    H3_RESOLUTIONS,
    SIGNAL_BANDS,
    h3_column,
    load_aliases,
    validate_payload,
)
from glue_job.dedup import EVENT_KEY
from glue_job.schemas import (
    BRONZE_SCHEMA,
    CELL_MINUTE_SCHEMA,
    EVENT_SCHEMA,
    OPERATOR_MINUTE_SCHEMA,
    POSTAL_STATUS_MINUTE_SCHEMA,
    QUARANTINE_SCHEMA,
    SILVER_SCHEMA,
    VALIDATED_SCHEMA,
    VALIDATION_INPUT,
)
from glue_job.tables import BAND_COLUMNS, STATUS_COLUMNS


def validate_records(raw: DataFrame, ingest_time: datetime) -> DataFrame:
    """Raw stream rows -> one row per record with its id, verdict and typed event.

    Never drops a row: a record that cannot even be inspected gets a reason too. Only the
    columns validation needs go to Python, and only a failed record's payload comes back.
    Each partition is validated on its own, so more partitions use more cores.
    """
    ingest_time = ingest_time.astimezone(UTC)
    arrow_schema = validated_arrow_schema()

    def validate_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if batch.num_rows:
                yield validate_arrow(batch, ingest_time, arrow_schema)

    return raw.select(*VALIDATION_INPUT).mapInArrow(validate_partition, VALIDATED_SCHEMA)


def validated_arrow_schema() -> pa.Schema:
    """``VALIDATED_SCHEMA`` in Arrow's types: what ``validate_arrow`` returns."""
    return pa.schema([pa.field(f.name, _arrow_type(f.dataType)) for f in VALIDATED_SCHEMA.fields])


def validate_arrow(
    batch: pa.RecordBatch, ingest_time: datetime, arrow_schema: pa.Schema
) -> pa.RecordBatch:
    """Validate one Arrow batch of raw rows (the work behind ``validate_records``)."""
    aliases = load_aliases()
    columns = {name: [] for name in arrow_schema.names}
    for name in ("shard_id", "sequence_number", "arrival_time"):
        columns[name] = batch.column(name)
    event_names = [f.name for f in EVENT_SCHEMA.fields]
    arrivals = batch.column("arrival_time").to_pylist()
    for data, arrived in zip(batch.column("data").to_pylist(), arrivals, strict=True):
        payload, payload_b64 = _decode(data)
        arrival = arrived.replace(tzinfo=UTC) if arrived and arrived.tzinfo is None else arrived
        try:
            # Already-decoded text skips a second UTF-8 decode; invalid bytes go in as bytes.
            verdict = validate_payload(
                data if payload_b64 else payload, ingest_time, aliases, arrival
            )
            reasons, event, hint = verdict.reasons, verdict.event, verdict.event_id
        except Exception as exc:  # noqa: BLE001 - a record must never crash the batch
            reasons, event, hint = [f"validation_error_{type(exc).__name__}"], None, None
        columns["reasons"].append(reasons)
        columns["event_id_hint"].append(hint)
        columns["payload"].append(payload if reasons else None)
        columns["payload_base64"].append(payload_b64 if reasons else None)
        for name in event_names:
            columns[name].append(event.get(name) if event else None)
    columns["ingest_time"] = [ingest_time] * batch.num_rows
    arrays = [
        column if isinstance(column, pa.Array) else pa.array(column, type=f.type)
        for f, column in zip(arrow_schema, (columns[n] for n in arrow_schema.names), strict=True)
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=arrow_schema)


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
        "boolean": pa.bool_(),
    }
    if name == "array":
        return pa.list_(_arrow_type(spark_type.elementType))
    return simple[name]


def _select(df: DataFrame, schema) -> DataFrame:
    return df.select(*[F.col(f.name).cast(f.dataType).alias(f.name) for f in schema.fields])


def to_bronze(raw: DataFrame, ingest_time: datetime) -> DataFrame:
    """Every record received, byte for byte, with stream metadata and ingest time.

    Done in Spark, not Python: UTF-8 text as is, and bytes that are not UTF-8 also as
    base64 (decoding replaced them, so re-encoding no longer gives the same bytes).
    """
    ingest_time = ingest_time.astimezone(UTC)
    text = F.expr("decode(data, 'UTF-8')")
    exact = F.encode(text, "UTF-8") == F.col("data")
    return _select(
        raw.select(
            text.alias("payload"),
            F.when(~exact, F.base64("data")).alias("payload_base64"),
            "stream_name",
            "shard_id",
            "sequence_number",
            "partition_key",
            "arrival_time",
            # Not F.lit: see glue_job.batch_values.
            batch_value(ingest_time).alias("ingest_time"),
            batch_value(ingest_time.date()).alias("ingest_date"),
            batch_value(ingest_time.hour).alias("ingest_hour"),
        ),
        BRONZE_SCHEMA,
    )


def to_quarantine(validated: DataFrame) -> DataFrame:
    """Every record that failed validation, with the raw payload and all reason codes."""
    failed = (
        validated.where(F.size("reasons") > 0)
        .withColumn("event_id", F.col("event_id_hint"))
        .withColumn("ingest_date", F.to_date("ingest_time"))
    )
    return _select(failed, QUARANTINE_SCHEMA)


def event_key(column: str = "event_id"):
    """64-bit key of an event id: what the dedup index stores instead of the id itself."""
    return F.xxhash64(F.col(column))


def valid_events(validated: DataFrame) -> DataFrame:
    """Records that passed validation, keyed for dedup (duplicates still included)."""
    return validated.where(F.size("reasons") == 0).withColumn(EVENT_KEY, event_key())


def to_silver(valid: DataFrame, dropped: DataFrame | None) -> DataFrame:
    """Valid events minus the duplicates in ``dropped`` (None: the batch has none).

    ``dropped`` names records by (shard_id, sequence_number): later arrivals of an
    event_id within the batch and events already in silver (see ``glue_job.dedup``).
    """
    fresh = valid
    if dropped is not None:
        fresh = valid.join(
            F.broadcast(dropped), on=["shard_id", "sequence_number"], how="left_anti"
        )
    return _select(fresh.withColumn("event_date", F.to_date("event_time")), SILVER_SCHEMA)


def _minute(df: DataFrame) -> DataFrame:
    return df.withColumn("minute", F.date_trunc("minute", "event_time"))


def _hour_partition(df: DataFrame) -> DataFrame:
    """Gold's partition columns: the minute's UTC date and hour."""
    return df.withColumn("event_date", F.to_date("minute")).withColumn(
        "event_hour", F.hour("minute")
    )


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
    return _select(_hour_partition(grouped), OPERATOR_MINUTE_SCHEMA)


def to_postal_status_minute(silver: DataFrame) -> DataFrame:
    """Mergeable partials per (minute, postal code, operator, status), with coordinate sums
    for centroids; the operator key lets maps and status views filter by operator."""
    has_position = F.col("latitude").isNotNull() & F.col("longitude").isNotNull()
    grouped = (
        _minute(silver)
        .groupBy("minute", "postal_code", "operator", "status", "status_label")
        .agg(
            F.count(F.lit(1)).alias("events"),
            F.sum("signal_dbm").alias("signal_sum"),
            F.count("signal_dbm").alias("signal_count"),
            F.count(F.when(has_position, 1)).alias("position_count"),
            F.sum(F.when(has_position, F.col("latitude"))).alias("latitude_sum"),
            F.sum(F.when(has_position, F.col("longitude"))).alias("longitude_sum"),
        )
    )
    return _select(_hour_partition(grouped), POSTAL_STATUS_MINUTE_SCHEMA)


def to_cell_minute(silver: DataFrame) -> DataFrame:
    """Mergeable partials per (minute, H3 resolution, cell, operator) for the coverage map:
    signal sums and bands, events per status. Events without a position have no cell and
    are left out (the postal-code table still counts them)."""
    per_resolution = [
        _minute(silver)
        .where(F.col(h3_column(resolution)).isNotNull())
        .select(
            "minute",
            F.lit(resolution).alias("resolution"),
            F.col(h3_column(resolution)).alias("cell"),
            "operator",
            "signal_dbm",
            "status",
        )
        for resolution in H3_RESOLUTIONS
    ]
    located = per_resolution[0]
    for more in per_resolution[1:]:
        located = located.unionByName(more)
    grouped = located.groupBy("minute", "resolution", "cell", "operator").agg(
        F.count(F.lit(1)).alias("events"),
        F.sum("signal_dbm").alias("signal_sum"),
        F.count("signal_dbm").alias("signal_count"),
        *_band_counts(),
        *(
            F.count(F.when(F.col("status") == code, 1)).alias(name)
            for code, name in STATUS_COLUMNS.items()
        ),
    )
    return _select(_hour_partition(grouped), CELL_MINUTE_SCHEMA)
