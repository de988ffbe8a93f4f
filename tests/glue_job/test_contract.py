"""Event contract: every rule, on plain Python values."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from glue_job.contract import (
    BOUNDS,
    STATUS_LABELS,
    canonical_operator,
    signal_band,
    validate_payload,
)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def valid(**fields) -> dict:
    doc = {
        "event_id": "e-1",
        "event_time": "2026-11-28T11:59:00Z",
        "operator": "Movistar",
        "status": 0,
        "signal_dbm": -85,
        "precision_m": 12.5,
        "latitude": 41.39,
        "longitude": 2.17,
        "postal_code": "080193",
    }
    doc.update(fields)
    return {k: v for k, v in doc.items() if v is not ...}


def check(doc: dict | str | bytes) -> list[str]:
    payload = doc if isinstance(doc, str | bytes) else json.dumps(doc)
    return validate_payload(payload, NOW).reasons


def test_valid_event_is_typed_and_normalised():
    verdict = validate_payload(json.dumps(valid(operator="  movistar ", status=2)), NOW)
    assert verdict.reasons == []
    assert verdict.event["operator"] == "Movistar"
    assert verdict.event["status_label"] == "EMERGENCY_ONLY"
    assert verdict.event["signal_dbm"] == -85.0
    assert verdict.event["event_time"] == datetime(2026, 11, 28, 11, 59, tzinfo=UTC)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "empty_record"),
        (b"not json", "malformed_json"),
        (b'{"event_id": "e', "malformed_json"),
        (b"\xff\xfe\x00", "invalid_utf8"),
        (b"[1, 2]", "not_an_object"),
        (b"42", "not_an_object"),
        (b"[" * 100_000 + b"]" * 100_000, "too_deeply_nested"),
    ],
)
def test_unreadable_records_get_one_reason(payload, reason):
    assert check(payload) == [reason]


@pytest.mark.parametrize("field", ["event_id", "event_time", "operator", "status"])
def test_required_fields_missing_or_null(field):
    assert check(valid(**{field: ...})) == [f"missing_{field}"]
    assert check(valid(**{field: None})) == [f"missing_{field}"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("event_id", 7),
        ("event_time", 1700000000),
        ("operator", ["Movistar"]),
        ("status", "0"),
        ("status", True),
        ("status", 1.5),
        ("signal_dbm", "-80"),
        ("precision_m", {"m": 3}),
        ("postal_code", 80193),
    ],
)
def test_wrong_types(field, value):
    assert check(valid(**{field: value})) == [f"bad_type_{field}"]


@pytest.mark.parametrize("field", ["signal_dbm", "precision_m", "latitude", "longitude", "status"])
def test_range_bounds_inclusive_and_just_outside(field):
    low, high = BOUNDS[field]
    other = {"longitude": 2.17} if field == "latitude" else {}
    assert check(valid(**{field: low, **other})) in ([], ["out_of_range_position"])
    assert check(valid(**{field: high})) == []
    step = 1 if field == "status" else 0.001
    assert check(valid(**{field: low - step})) == [f"out_of_range_{field}"]
    assert check(valid(**{field: high + step})) == [f"out_of_range_{field}"]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_out_of_range(literal):
    payload = json.dumps(valid()).replace('"signal_dbm": -85', f'"signal_dbm": {literal}')
    assert check(payload) == ["out_of_range_signal_dbm"]


def test_event_time_rules():
    assert check(valid(event_time="2026-11-28T12:04:59Z")) == []
    assert check(valid(event_time="2026-11-28T12:05:01Z")) == ["future_event_time"]
    assert check(valid(event_time="2026-11-28T11:00:00")) == ["bad_format_event_time"]
    assert check(valid(event_time="yesterday")) == ["bad_format_event_time"]
    assert check(valid(event_time="1970-01-01T00:00:00Z")) == ["out_of_range_event_time"]
    assert check(valid(event_time="2026-11-28T13:00:00+02:00")) == []


def test_position_rules():
    assert check(valid(latitude=None, longitude=None)) == []
    assert check(valid(latitude=0, longitude=0)) == ["out_of_range_position"]
    assert check(valid(longitude=...)) == ["missing_longitude"]
    assert check(valid(latitude=...)) == ["missing_latitude"]


def test_lengths_and_blank_strings():
    assert check(valid(event_id="x" * 128)) == []
    assert check(valid(event_id="x" * 129)) == ["too_long_event_id"]
    assert check(valid(operator="   ")) == ["missing_operator"]
    assert check(valid(network="n" * 100_000)) == ["too_long_network"]


def test_all_reasons_are_reported_together():
    reasons = check({"event_id": "e", "status": 9, "signal_dbm": 5})
    assert set(reasons) == {
        "missing_event_time",
        "missing_operator",
        "out_of_range_status",
        "out_of_range_signal_dbm",
    }


def test_unknown_fields_are_kept_valid():
    assert check(valid(firmware="1.2.3", extra={"nested": [1, 2]})) == []


def test_operator_canonicalisation_merges_case_and_spacing():
    assert canonical_operator("movistar") == canonical_operator(" MOVISTAR  ") == "Movistar"
    assert canonical_operator("YOIGO") == "Yoigo"
    assert canonical_operator("Some  New telco") == canonical_operator("some new TELCO")
    assert canonical_operator("x", aliases={"x": "Renamed"}) == "Renamed"


def test_status_codes_and_signal_bands():
    assert STATUS_LABELS == {
        0: "IN_SERVICE",
        1: "OUT_OF_SERVICE",
        2: "EMERGENCY_ONLY",
        3: "POWER_OFF",
    }
    assert [signal_band(v) for v in (-80, -80.5, -90, -95, -100, -100.1)] == [
        "excellent",
        "good",
        "good",
        "fair",
        "fair",
        "poor",
    ]


def test_future_bound_moves_with_ingest_time():
    later = NOW + timedelta(hours=1)
    doc = json.dumps(valid(event_time="2026-11-28T12:30:00Z"))
    assert validate_payload(doc, NOW).reasons == ["future_event_time"]
    assert validate_payload(doc, later).reasons == []


def test_a_key_sent_twice_keeps_its_last_value_in_both_parsers() -> None:
    from glue_job.contract import parse_json

    assert parse_json('{"signal_dbm": -70, "signal_dbm": -80}') == {"signal_dbm": -80}
    # NaN sends the text through the standard library's parser: the same rule there.
    assert parse_json('{"a": NaN, "signal_dbm": -70, "signal_dbm": -80}')["signal_dbm"] == -80
