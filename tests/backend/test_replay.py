"""CSV replay mapping and JSON Lines pass-through, asserted on real converted values."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from backend.replay import (
    events_from_csv,
    events_from_jsonl,
    make_event_id,
    map_csv_row,
    read_csv_events,
)
from glue_job.contract import EVENT_ID_MAX_LEN, FIELD_NAMES, validate_payload

MOBILE_LOGS = Path(__file__).resolve().parents[2] / "backend" / "data" / "mobile-logs.csv"
DAY = date(2024, 5, 1)
HEADER = (
    "hour,lat,long,signal,network,operator,status,description,speed,satellites,"
    "precission,provider,activity,postal_code"
)


def write_csv(path: Path, *rows: str) -> Path:
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return path


def test_first_data_row_maps_to_the_contract():
    # Line 2 of the file: 00:01:16,41.67089,0.53407,2,vodafone,vodafone ES,0,...,250236.0
    first = json.loads(next(events_from_csv(MOBILE_LOGS, DAY)))
    assert first == {
        "event_id": "mobile-logs.csv:2",
        "event_time": "2024-05-01T00:01:16.000Z",
        "operator": "vodafone ES",
        "network": "vodafone",
        "status": 0,
        "signal_dbm": -109,  # 2 * 2 - 113
        "precision_m": 51.0,
        "latitude": 41.67089,
        "longitude": 0.53407,
        "postal_code": "250236",
        "device_id": None,
        "provider": "gps",
        "activity": "STILL",
        "speed_mps": 0.0,
        "satellites": 4,
    }
    assert list(first) == list(FIELD_NAMES)


def test_records_are_compact_utf8_json():
    record = next(events_from_csv(MOBILE_LOGS, DAY))
    assert record.startswith(b'{"event_id":"mobile-logs.csv:2","event_time":')
    assert b", " not in record
    assert b": " not in record


def test_whole_file_gives_1000_events_with_unique_stable_ids():
    first_read = list(events_from_csv(MOBILE_LOGS, DAY))
    second_read = list(events_from_csv(MOBILE_LOGS, DAY))
    ids = [json.loads(record)["event_id"] for record in first_read]

    assert len(first_read) == 1000
    assert len(set(ids)) == 1000
    assert ids[0] == "mobile-logs.csv:2"
    assert ids[-1] == "mobile-logs.csv:1001"
    assert second_read == first_read  # replaying the file twice adds nothing new


def test_postal_codes_get_their_leading_zero_back():
    events = list(read_csv_events(MOBILE_LOGS, DAY))
    codes = Counter(event["postal_code"] for event in events)

    assert codes["080333"] == 51  # stored as 80333.0
    assert codes["250560"] == 25  # six digits already
    assert codes[None] == 223  # empty cells become null
    assert all(code is None or (len(code) == 6 and code.isdigit()) for code in codes)


def test_real_file_quarantines_only_what_is_really_wrong():
    """Cross-check with the contract: the bogus ASU 50-65 readings and the empty operator."""
    verdicts = [
        validate_payload(record, datetime(2024, 5, 2, tzinfo=UTC))
        for record in events_from_csv(MOBILE_LOGS, DAY)
    ]
    reasons = Counter(reason for verdict in verdicts for reason in verdict.reasons)
    failed = {verdict.event_id for verdict in verdicts if verdict.reasons}

    assert reasons == {"out_of_range_signal_dbm": 5, "missing_operator": 1}
    assert "mobile-logs.csv:880" in failed  # ASU 65 -> +17 dBm
    assert "mobile-logs.csv:25" in failed  # empty operator


def test_signal_conversion_covers_unknown_and_bogus_asu(tmp_path):
    path = write_csv(
        tmp_path / "signals.csv",
        "10:00:00,41.1,2.1,99,orange,Orange,0,STATE_IN_SERVICE,0.0,4.0,5.0,gps,STILL,80333.0",
        "10:00:01,41.1,2.1,31,orange,Orange,0,STATE_IN_SERVICE,0.0,4.0,5.0,gps,STILL,80333.0",
        "10:00:02,41.1,2.1,65,orange,Orange,0,STATE_IN_SERVICE,0.0,4.0,5.0,gps,STILL,80333.0",
        "10:00:03,41.1,2.1,,orange,Orange,0,STATE_IN_SERVICE,0.0,4.0,5.0,gps,STILL,80333.0",
    )
    signals = [event["signal_dbm"] for event in read_csv_events(path, DAY)]
    assert signals == [None, -51, 17, None]


def test_values_that_do_not_convert_travel_raw_and_are_never_dropped(tmp_path):
    path = write_csv(
        tmp_path / "odd.csv",
        ",41.1,2.1,10,orange,Orange,abc,X,fast,4.5,wide,gps,STILL,ABC",
        "25:61:00,north,2.1,ten,,,,,,,,,,",
        "7:05:09,41.1,2.1,10,orange,Orange,1.0,X,0.0,4.0,5.0,gps,STILL,-8.0",
        "short,row",
    )
    events = list(read_csv_events(path, DAY))

    assert [e["event_id"] for e in events] == [f"odd.csv:{n}" for n in (2, 3, 4, 5)]
    bad, worse, fine, short = events
    assert bad["event_time"] is None  # empty hour -> missing_event_time downstream
    assert (bad["status"], bad["speed_mps"], bad["precision_m"]) == ("abc", "fast", "wide")
    assert bad["satellites"] == 4.5  # a number, but not an integer: the job flags it
    assert bad["postal_code"] == "ABC"
    assert (worse["event_time"], worse["latitude"], worse["signal_dbm"]) == (
        "25:61:00",
        "north",
        "ten",
    )
    assert (worse["operator"], worse["network"], worse["status"]) == (None, None, None)
    assert fine["event_time"] == "2024-05-01T07:05:09.000Z"  # single-digit hour is accepted
    assert fine["status"] == 1
    assert fine["postal_code"] == "-8.0"  # not a postal code: kept raw for quarantine
    assert (short["event_time"], short["latitude"], short["longitude"]) == ("short", "row", None)

    reasons = [
        set(validate_payload(json.dumps(e), datetime(2024, 5, 2, tzinfo=UTC)).reasons)
        for e in events
    ]
    assert {"missing_event_time", "bad_type_status", "bad_type_speed_mps"} <= reasons[0]
    assert {"bad_format_event_time", "bad_type_latitude", "missing_operator"} <= reasons[1]


def test_event_ids_follow_physical_lines_across_blank_lines_and_quoted_newlines(tmp_path):
    path = tmp_path / "multiline.csv"
    path.write_text(
        HEADER + "\n"
        "10:00:00,41.1,2.1,10,orange,Orange,0,X,0.0,4.0,5.0,gps,STILL,80333.0\n"
        "\n"
        '10:00:01,41.1,2.1,10,orange,"Orange\nES",0,X,0.0,4.0,5.0,gps,STILL,80333.0\n'
        "10:00:02,41.1,2.1,10,orange,Orange,0,X,0.0,4.0,5.0,gps,STILL,80333.0\n",
        encoding="utf-8",
    )
    events = list(read_csv_events(path, DAY))
    assert [e["event_id"] for e in events] == [
        "multiline.csv:2",
        "multiline.csv:4",
        "multiline.csv:6",
    ]
    assert events[1]["operator"] == "Orange\nES"


def test_long_file_names_are_hashed_into_the_id_limit():
    long_id = make_event_id("x" * 200 + ".csv", 2)
    assert len(long_id) <= EVENT_ID_MAX_LEN
    assert long_id.startswith("sha256:")
    assert long_id == make_event_id("x" * 200 + ".csv", 2)
    assert long_id != make_event_id("x" * 200 + ".csv", 3)
    assert make_event_id("mobile-logs.csv", 2) == "mobile-logs.csv:2"


def test_non_finite_numbers_are_kept_as_text_so_the_json_stays_valid():
    row = {"hour": "10:00:00", "lat": "nan", "long": "inf", "signal": "NaN"}
    event = map_csv_row(row, "e", DAY)
    assert (event["latitude"], event["longitude"], event["signal_dbm"]) == ("nan", "inf", "NaN")


def test_jsonl_lines_are_sent_byte_for_byte(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_bytes(
        b'{"event_id":"a","status":0}\n'
        b"not json at all\n"
        b"\n"
        b"   \n"
        b'{"event_id":"b"}\r\n'
        b"\xff\xfe broken utf-8\n"
        b'{"event_id":"c"}'  # no newline at the end of the file
    )
    assert list(events_from_jsonl(path)) == [
        b'{"event_id":"a","status":0}',
        b"not json at all",
        b"   ",
        b'{"event_id":"b"}',
        b"\xff\xfe broken utf-8",
        b'{"event_id":"c"}',
    ]


@pytest.mark.parametrize(
    ("record", "reason"),
    [(b"not json at all", "malformed_json"), (b"\xff\xfe broken utf-8", "invalid_utf8")],
)
def test_bad_jsonl_lines_reach_quarantine_with_a_reason(record, reason):
    assert validate_payload(record, datetime.now(UTC)).reasons == [reason]
