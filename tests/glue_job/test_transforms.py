"""Transforms (bronze -> silver/quarantine -> gold) on small static DataFrames.

Each transform of ``glue_job.transforms`` gets a few rows built here and its whole output
is compared, with ``assertDataFrameEqual``, to a frame written out by hand: no lake, no
stream, no clock (the ingest time is an argument).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from pyspark.testing import assertDataFrameEqual

from glue_job.contract import h3_cells
from glue_job.schemas import (
    BRONZE_SCHEMA,
    CELL_MINUTE_SCHEMA,
    OPERATOR_MINUTE_SCHEMA,
    POSTAL_STATUS_MINUTE_SCHEMA,
    QUARANTINE_SCHEMA,
    RAW_SCHEMA,
    SILVER_SCHEMA,
    VALIDATED_SCHEMA,
)
from glue_job.transforms import (
    event_key,
    to_bronze,
    to_cell_minute,
    to_operator_minute,
    to_postal_status_minute,
    to_quarantine,
    to_silver,
    valid_events,
    validate_records,
)

pytestmark = pytest.mark.glue  # runs on Glue 5.0's runtime too (Makefile: test)

STREAM, SHARD = "telcopulse-events", "shardId-000000000000"
ARRIVAL = datetime(2026, 3, 1, 10, 29, 58, tzinfo=UTC)
INGEST = datetime(2026, 3, 1, 10, 30, tzinfo=UTC)
NOT_UTF8 = b"\x80\x81 binary"
NOT_UTF8_TEXT = "\ufffd\ufffd binary"  # each byte that is not UTF-8 replaced by U+FFFD
NOT_UTF8_BASE64 = "gIEgYmluYXJ5"


def frame(spark, schema, rows: list[dict]):
    """A DataFrame of ``schema`` from sparse rows: a column a row leaves out is null."""
    names = schema.fieldNames()
    for row in rows:
        assert set(row) <= set(names), f"not in the schema: {set(row) - set(names)}"
    return spark.createDataFrame([tuple(row.get(n) for n in names) for row in rows], schema)


def raw(spark, payloads: list[bytes]):
    """Stream rows as the Kinesis reader emits them, sequence numbers 1, 2, ..."""
    return frame(
        spark,
        RAW_SCHEMA,
        [
            {
                "data": payload,
                "stream_name": STREAM,
                "shard_id": SHARD,
                "sequence_number": str(seq),
                "partition_key": f"pk-{seq}",
                "arrival_time": ARRIVAL,
            }
            for seq, payload in enumerate(payloads, start=1)
        ],
    )


def stream_id(seq: int) -> dict:
    return {"shard_id": SHARD, "sequence_number": str(seq), "arrival_time": ARRIVAL}


# --- bronze ---------------------------------------------------------------------------------


def test_to_bronze_keeps_every_byte_and_partitions_by_the_utc_ingest_hour(spark):
    # Ten past midnight in Madrid's summer time is 22:10 UTC the day before.
    ingest = datetime(2026, 3, 2, 0, 10, tzinfo=timezone(timedelta(hours=2)))
    bronze = to_bronze(raw(spark, [b'{"event_id": "a"}', NOT_UTF8, b""]), ingest)

    common = {
        "stream_name": STREAM,
        "ingest_time": datetime(2026, 3, 1, 22, 10, tzinfo=UTC),
        "ingest_date": date(2026, 3, 1),
        "ingest_hour": 22,
    }
    expected = [
        {"payload": '{"event_id": "a"}', "partition_key": "pk-1", **stream_id(1), **common},
        {
            "payload": NOT_UTF8_TEXT,
            "payload_base64": NOT_UTF8_BASE64,  # the text alone no longer gives the bytes back
            "partition_key": "pk-2",
            **stream_id(2),
            **common,
        },
        {"payload": "", "partition_key": "pk-3", **stream_id(3), **common},
    ]
    assertDataFrameEqual(bronze, frame(spark, BRONZE_SCHEMA, expected))


# --- validation -----------------------------------------------------------------------------

VALID_EVENT = {
    "event_id": "v-1",
    "event_time": "2026-03-01T10:29:15Z",
    "operator": " movistar ",
    "status": 1,
    "signal_dbm": -85,
    "precision_m": 12.5,
    "latitude": 41.39,
    "longitude": 2.17,
    "postal_code": "080193",
}
TWO_FAULTS = {"event_id": "bad-1", "event_time": "2026-03-01T10:29:15Z", "status": 7}


def test_validate_records_gives_every_record_its_verdict_and_typed_event(spark):
    payloads = [
        json.dumps(VALID_EVENT).encode(),
        b"{not json",
        NOT_UTF8,
        json.dumps(TWO_FAULTS).encode(),
    ]
    validated = validate_records(raw(spark, payloads), INGEST)

    verdict = {"ingest_time": INGEST}
    expected = [
        {
            **stream_id(1),
            **verdict,
            "reasons": [],
            "event_id_hint": "v-1",
            # The event, typed and normalised: the operator through the alias table.
            "event_id": "v-1",
            "event_time": datetime(2026, 3, 1, 10, 29, 15, tzinfo=UTC),
            "operator": "Movistar",
            "status": 1,
            "status_label": "OUT_OF_SERVICE",
            "signal_dbm": -85.0,
            "precision_m": 12.5,
            "latitude": 41.39,
            "longitude": 2.17,
            **h3_cells(41.39, 2.17),
            "postal_code": "080193",
        },
        {**stream_id(2), **verdict, "reasons": ["malformed_json"], "payload": "{not json"},
        {
            **stream_id(3),
            **verdict,
            "reasons": ["invalid_utf8"],
            "payload": NOT_UTF8_TEXT,
            "payload_base64": NOT_UTF8_BASE64,
        },
        {
            **stream_id(4),
            **verdict,
            "reasons": ["missing_operator", "out_of_range_status"],  # every reason, in field order
            "event_id_hint": "bad-1",
            "payload": json.dumps(TWO_FAULTS),
        },
    ]
    assertDataFrameEqual(validated, frame(spark, VALIDATED_SCHEMA, expected))


# --- silver and quarantine ------------------------------------------------------------------

EVENT_TIME = datetime(2026, 3, 1, 23, 59, 30, tzinfo=UTC)
NEXT_DAY = datetime(2026, 3, 2, 0, 0, 10, tzinfo=UTC)


def passed(seq: int, event_id: str, operator: str = "Movistar") -> dict:
    """A validated row that passed: the verdict columns and its event."""
    event = {
        "event_id": event_id,
        "event_time": EVENT_TIME,
        "operator": operator,
        "status": 0,
        "status_label": "IN_SERVICE",
        "signal_dbm": -85.0,
        "postal_code": "080193",
    }
    return {
        **stream_id(seq),
        "ingest_time": NEXT_DAY,
        "reasons": [],
        "event_id_hint": event_id,
        **event,
    }


def failed(seq: int, reasons: list[str], payload: str, hint: str | None = None) -> dict:
    return {
        **stream_id(seq),
        "ingest_time": NEXT_DAY,
        "reasons": reasons,
        "event_id_hint": hint,
        "payload": payload,
    }


def test_to_quarantine_keeps_failed_records_with_every_reason(spark):
    validated = frame(
        spark,
        VALIDATED_SCHEMA,
        [
            passed(1, "v-1"),
            failed(2, ["malformed_json"], "{not json"),
            failed(
                3, ["missing_operator", "out_of_range_status"], '{"event_id": "bad-1"}', "bad-1"
            ),
        ],
    )
    common = {"ingest_time": NEXT_DAY, "ingest_date": date(2026, 3, 2)}
    expected = [
        {**stream_id(2), **common, "reasons": ["malformed_json"], "payload": "{not json"},
        {
            **stream_id(3),
            **common,
            "reasons": ["missing_operator", "out_of_range_status"],
            "payload": '{"event_id": "bad-1"}',
            "event_id": "bad-1",  # the best-effort id the record carried
        },
    ]
    assertDataFrameEqual(to_quarantine(validated), frame(spark, QUARANTINE_SCHEMA, expected))


# Spark's xxhash64 (seed 42) of each id, as Spark 4.0 and Glue's Spark 3.5.4 both compute it:
# a job restarted on the other runtime must rebuild the same dedup index.
KEYS = {"v-1": -5400431840140933992, "v-2": -6326647913980759860}


def test_event_key_is_sparks_xxhash64_of_the_id(spark):
    ids = spark.createDataFrame([("v-1",), ("v-2",)], "id string")
    keys = ids.select("id", event_key("id").alias("key"))
    assertDataFrameEqual(keys, spark.createDataFrame(list(KEYS.items()), "id string, key long"))


def test_valid_events_are_the_passed_records_keyed_for_dedup(spark):
    validated = frame(
        spark,
        VALIDATED_SCHEMA,
        [passed(1, "v-1"), failed(2, ["malformed_json"], "{not json"), passed(3, "v-2")],
    )
    expected = frame(spark, VALIDATED_SCHEMA, [passed(1, "v-1"), passed(3, "v-2")])
    keys = spark.createDataFrame([("1", KEYS["v-1"]), ("3", KEYS["v-2"])], "seq string, key long")
    expected = expected.join(keys, expected.sequence_number == keys.seq).select(
        *VALIDATED_SCHEMA.fieldNames(), keys.key.alias("event_key")
    )
    assertDataFrameEqual(valid_events(validated), expected)


def test_to_silver_drops_the_named_duplicates_and_dates_events_by_event_time(spark):
    valid = valid_events(
        frame(
            spark,
            VALIDATED_SCHEMA,
            [passed(1, "v-1"), passed(2, "v-1", operator="Orange"), passed(3, "v-2")],
        )
    )
    # Record 2 repeats v-1; the second entry names a record this batch does not hold.
    dropped = spark.createDataFrame(
        [(SHARD, "2"), ("shardId-000000000001", "1")], "shard_id string, sequence_number string"
    )
    event = {
        "event_time": EVENT_TIME,
        "operator": "Movistar",
        "status": 0,
        "status_label": "IN_SERVICE",
        "signal_dbm": -85.0,
        "postal_code": "080193",
        "arrival_time": ARRIVAL,
        "ingest_time": NEXT_DAY,
        "event_date": date(2026, 3, 1),  # the event's UTC date, not the ingest date
    }
    expected = [{"event_id": "v-1", **event}, {"event_id": "v-2", **event}]
    assertDataFrameEqual(to_silver(valid, dropped), frame(spark, SILVER_SCHEMA, expected))


def test_to_silver_without_duplicates_keeps_every_valid_event_as_an_empty_list_would(spark):
    valid = valid_events(
        frame(spark, VALIDATED_SCHEMA, [passed(1, "v-1"), passed(2, "v-2", operator="Orange")])
    )
    none = spark.createDataFrame([], "shard_id string, sequence_number string")
    kept = to_silver(valid, None)
    assert sorted(r["event_id"] for r in kept.collect()) == ["v-1", "v-2"]
    assertDataFrameEqual(kept, to_silver(valid, none))


# --- gold -----------------------------------------------------------------------------------


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def silver_event(event_time: str, operator: str, **fields) -> dict:
    return {
        "event_id": f"{operator}@{event_time}",
        "event_time": at(event_time),
        "operator": operator,
        "status": 0,
        "status_label": "IN_SERVICE",
        **fields,
    }


def test_to_operator_minute_sums_counts_and_signal_bands_per_minute_and_operator(spark):
    silver = frame(
        spark,
        SILVER_SCHEMA,
        [
            # Band floors are inclusive: -80 is excellent, -90 good, -100 fair.
            silver_event("2026-03-01 10:00:05", "Movistar", signal_dbm=-80.0, precision_m=10.0),
            silver_event("2026-03-01 10:00:40", "Movistar", signal_dbm=-80.5, precision_m=20.0),
            silver_event("2026-03-01 10:00:59", "Movistar", signal_dbm=-90.0),
            silver_event("2026-03-01 10:00:30", "Movistar", precision_m=5.0),  # no signal
            silver_event("2026-03-01 10:00:00", "Orange", signal_dbm=-100.0),
            silver_event("2026-03-01 10:00:01", "Orange", signal_dbm=-100.5),
            silver_event("2026-03-01 23:59:59", "Movistar", signal_dbm=-70.0),
        ],
    )
    ten = {"minute": at("2026-03-01 10:00"), "event_date": date(2026, 3, 1), "event_hour": 10}
    no_bands = {"signal_excellent": 0, "signal_good": 0, "signal_fair": 0, "signal_poor": 0}
    expected = [
        {
            **ten,
            **no_bands,
            "operator": "Movistar",
            "events": 4,
            "signal_sum": -250.5,
            "signal_count": 3,
            "signal_min": -90.0,
            "signal_max": -80.0,
            "signal_excellent": 1,
            "signal_good": 2,
            "precision_sum": 35.0,
            "precision_count": 3,
        },
        {
            **ten,
            **no_bands,
            "operator": "Orange",
            "events": 2,
            "signal_sum": -200.5,
            "signal_count": 2,
            "signal_min": -100.5,
            "signal_max": -100.0,
            "signal_fair": 1,
            "signal_poor": 1,
            "precision_count": 0,  # and no precision sum
        },
        {
            **no_bands,
            "minute": at("2026-03-01 23:59"),
            "event_date": date(2026, 3, 1),
            "event_hour": 23,
            "operator": "Movistar",
            "events": 1,
            "signal_sum": -70.0,
            "signal_count": 1,
            "signal_min": -70.0,
            "signal_max": -70.0,
            "signal_excellent": 1,
            "precision_count": 0,
        },
    ]
    assertDataFrameEqual(to_operator_minute(silver), frame(spark, OPERATOR_MINUTE_SCHEMA, expected))


def test_to_postal_status_minute_counts_positions_apart_from_events(spark):
    here = {"postal_code": "080193", "latitude": 41.0, "longitude": 2.0}
    silver = frame(
        spark,
        SILVER_SCHEMA,
        [
            silver_event("2026-03-01 10:00:05", "Movistar", signal_dbm=-80.0, **here),
            silver_event(
                "2026-03-01 10:00:06",
                "Movistar",
                signal_dbm=-90.0,
                postal_code="080193",
                latitude=43.0,
                longitude=4.0,
            ),
            # In the same postal code but without a position: an event, not a position.
            silver_event("2026-03-01 10:00:07", "Movistar", postal_code="080193"),
            silver_event(
                "2026-03-01 10:00:08",
                "Movistar",
                signal_dbm=-95.0,
                status=1,
                status_label="OUT_OF_SERVICE",
                **here,
            ),
            silver_event("2026-03-01 10:00:09", "Orange", signal_dbm=-99.0),  # no postal code
        ],
    )

    ten = {"minute": at("2026-03-01 10:00"), "event_date": date(2026, 3, 1), "event_hour": 10}
    expected = [
        {
            **ten,
            "postal_code": "080193",
            "operator": "Movistar",
            "status": 0,
            "status_label": "IN_SERVICE",
            "events": 3,
            "signal_sum": -170.0,
            "signal_count": 2,
            "position_count": 2,
            "latitude_sum": 84.0,
            "longitude_sum": 6.0,
        },
        {
            **ten,
            "postal_code": "080193",
            "operator": "Movistar",
            "status": 1,
            "status_label": "OUT_OF_SERVICE",
            "events": 1,
            "signal_sum": -95.0,
            "signal_count": 1,
            "position_count": 1,
            "latitude_sum": 41.0,
            "longitude_sum": 2.0,
        },
        {
            **ten,
            "postal_code": None,
            "operator": "Orange",
            "status": 0,
            "status_label": "IN_SERVICE",
            "events": 1,
            "signal_sum": -99.0,
            "signal_count": 1,
            "position_count": 0,  # and no coordinate sums
        },
    ]
    assertDataFrameEqual(
        to_postal_status_minute(silver), frame(spark, POSTAL_STATUS_MINUTE_SCHEMA, expected)
    )


def test_to_cell_minute_counts_per_cell_operator_and_resolution(spark):
    """Both resolutions, events per status as columns, band counts; no position, no cell."""
    centre = {"latitude": 41.4036, "longitude": 2.1352, **h3_cells(41.4036, 2.1352)}
    nearby = {"latitude": 41.4037, "longitude": 2.1353, **h3_cells(41.4037, 2.1353)}
    far = {"latitude": 41.4236, "longitude": 2.1552, **h3_cells(41.4236, 2.1552)}
    assert centre["h3_res8"] == nearby["h3_res8"] != far["h3_res8"]
    assert centre["h3_res6"] == far["h3_res6"], "one coarse cell holds all three"
    out = {"status": 1, "status_label": "OUT_OF_SERVICE"}
    silver = frame(
        spark,
        SILVER_SCHEMA,
        [
            silver_event("2026-03-01 10:00:05", "Movistar", signal_dbm=-79.0, **centre),
            silver_event("2026-03-01 10:00:06", "Movistar", signal_dbm=-95.0, **nearby),
            silver_event("2026-03-01 10:00:07", "Movistar", **out, **far),  # no signal
            silver_event("2026-03-01 10:00:08", "Orange", signal_dbm=-101.0),  # no position
        ],
    )
    ten = {"minute": at("2026-03-01 10:00"), "event_date": date(2026, 3, 1), "event_hour": 10}
    zero = {
        "signal_excellent": 0,
        "signal_good": 0,
        "signal_fair": 0,
        "signal_poor": 0,
        "status_in_service": 0,
        "status_out_of_service": 0,
        "status_emergency_only": 0,
        "status_power_off": 0,
    }
    expected = [
        {
            **ten,
            **zero,
            "resolution": 8,
            "cell": centre["h3_res8"],
            "operator": "Movistar",
            "events": 2,
            "signal_sum": -174.0,
            "signal_count": 2,
            "signal_excellent": 1,
            "signal_fair": 1,
            "status_in_service": 2,
        },
        {
            **ten,
            **zero,
            "resolution": 8,
            "cell": far["h3_res8"],
            "operator": "Movistar",
            "events": 1,
            "signal_count": 0,
            "status_out_of_service": 1,
        },
        {
            **ten,
            **zero,
            "resolution": 6,
            "cell": centre["h3_res6"],
            "operator": "Movistar",
            "events": 3,
            "signal_sum": -174.0,
            "signal_count": 2,
            "signal_excellent": 1,
            "signal_fair": 1,
            "status_in_service": 2,
            "status_out_of_service": 1,
        },
    ]
    assertDataFrameEqual(to_cell_minute(silver), frame(spark, CELL_MINUTE_SCHEMA, expected))
