"""Schemas (all layers): explicit Spark schemas derived from ``glue_job.tables``.

Nothing is ever inferred, so Spark 3.5 (Glue) and Spark 4 (local) read and
write the same shapes.
"""

from __future__ import annotations

from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    DataType,
    DateType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from glue_job.tables import (
    BRONZE,
    CELL_MINUTE,
    COMMIT_DIR,
    EVENT_COLUMNS,
    OPERATOR_MINUTE,
    OPS,
    POSTAL_STATUS_MINUTE,
    QUARANTINE,
    SILVER,
    WRITER_COLUMNS,
    Table,
)

_TYPES: dict[str, DataType] = {
    "string": StringType(),
    "binary": BinaryType(),
    "int": IntegerType(),
    "long": LongType(),
    "double": DoubleType(),
    "date": DateType(),
    "timestamp": TimestampType(),
    "array<string>": ArrayType(StringType(), containsNull=False),
    "array<date>": ArrayType(DateType(), containsNull=False),
}


def struct(columns) -> StructType:
    return StructType([StructField(name, _TYPES[kind], True) for name, kind in columns])


def table_schema(table: Table) -> StructType:
    """What a transform hands the writer: data columns plus the date partitions, less the
    batch and commit ids, which the writer adds."""
    data = [(name, kind) for name, kind in table.columns if name not in WRITER_COLUMNS]
    return struct((*data, *table.partition_types))


def file_schema(table: Table) -> StructType:
    """What reading the table's directory gives: every column, the partitions and the
    commit directory. Given to the reader, so a table whose only directories hold no
    file yet (a first batch killed mid-write) reads as empty instead of failing."""
    return struct((*table.columns, *table.partition_types, (COMMIT_DIR, "long")))


# What the Kinesis reader emits, one row per record.
RAW_SCHEMA = struct(
    (
        ("data", "binary"),
        ("stream_name", "string"),
        ("shard_id", "string"),
        ("sequence_number", "string"),
        ("partition_key", "string"),
        ("arrival_time", "timestamp"),
    )
)

BRONZE_SCHEMA = table_schema(BRONZE)
EVENT_SCHEMA = struct(EVENT_COLUMNS)
SILVER_SCHEMA = table_schema(SILVER)
QUARANTINE_SCHEMA = table_schema(QUARANTINE)
OPERATOR_MINUTE_SCHEMA = table_schema(OPERATOR_MINUTE)
POSTAL_STATUS_MINUTE_SCHEMA = table_schema(POSTAL_STATUS_MINUTE)
CELL_MINUTE_SCHEMA = table_schema(CELL_MINUTE)
OPS_SCHEMA = table_schema(OPS)

# What validation reads of a raw record, and what it returns: the record's id and arrival,
# the verdict, the typed event, and the payload only when the record failed (quarantine
# keeps it; bronze takes every payload straight from the raw records).
VALIDATION_INPUT = ("data", "shard_id", "sequence_number", "arrival_time")
VALIDATED_SCHEMA = StructType(
    [
        StructField("shard_id", StringType(), True),
        StructField("sequence_number", StringType(), True),
        StructField("arrival_time", TimestampType(), True),
        StructField("ingest_time", TimestampType(), True),
        StructField("reasons", ArrayType(StringType(), containsNull=False), True),
        StructField("event_id_hint", StringType(), True),
        StructField("payload", StringType(), True),
        StructField("payload_base64", StringType(), True),
        *EVENT_SCHEMA.fields,
    ]
)
