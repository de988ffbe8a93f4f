"""The earlier producers' shape (input version 1) and operators as people mean them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time

import pytest

from glue_job import legacy
from glue_job.contract import load_banners, validate_payload

pytestmark = pytest.mark.glue  # runs on Glue 5.0's runtime too (Makefile: test)

ARRIVAL = datetime(2026, 12, 4, 10, 30, 15, tzinfo=UTC)


def v1(**fields) -> dict:
    """A mobile-logs row as the earlier producers sent it."""
    row = {
        "timestamp": "09:15:02",
        "operator": "Movistar",
        "network": "movistar",
        "provider": "gps",
        "activity": "STILL",
        "postal_code": "80333.0",
        "signal": 20.0,
        "precision": 12.0,
        "status": 0,
    }
    row.update(fields)
    return {k: v for k, v in row.items() if v is not ...}


def check(doc: dict, arrival: datetime = ARRIVAL):
    # The job reads a record after it arrived.
    return validate_payload(json.dumps(doc), max(arrival, ARRIVAL), arrival=arrival)


def test_a_v1_record_maps_to_the_contract() -> None:
    verdict = check(v1(lat=41.39, long=2.17))
    assert verdict.reasons == []
    event = verdict.event
    assert event["event_time"] == datetime(2026, 12, 4, 9, 15, 2, tzinfo=UTC)
    assert event["signal_dbm"] == 2 * 20 - 113
    assert event["postal_code"] == "080333"
    assert event["precision_m"] == 12.0
    assert (event["latitude"], event["longitude"]) == (41.39, 2.17)
    assert event["operator"] == "Movistar"
    assert (event["provider"], event["activity"], event["network"]) == ("gps", "STILL", "movistar")
    assert event["event_id"] == verdict.event_id
    assert event["event_id"].startswith("v1:")


@pytest.mark.parametrize(
    ("time_of_day", "arrival", "expected"),
    [
        # Earlier today.
        ("09:15:02", ARRIVAL, datetime(2026, 12, 4, 9, 15, 2, tzinfo=UTC)),
        # Exactly the arrival: at or before it.
        ("10:30:15", ARRIVAL, datetime(2026, 12, 4, 10, 30, 15, tzinfo=UTC)),
        # Later than the arrival's time of day: the day before.
        ("10:30:16", ARRIVAL, datetime(2026, 12, 3, 10, 30, 16, tzinfo=UTC)),
        # Sent just before midnight, arrived just after it.
        (
            "23:59:58",
            datetime(2026, 12, 5, 0, 0, 1, tzinfo=UTC),
            datetime(2026, 12, 4, 23, 59, 58, tzinfo=UTC),
        ),
    ],
)
def test_the_event_time_is_the_latest_instant_at_or_before_the_arrival(
    time_of_day: str, arrival: datetime, expected: datetime
) -> None:
    assert check(v1(timestamp=time_of_day), arrival).event["event_time"] == expected
    assert legacy.latest_at_or_before(time.fromisoformat(time_of_day), arrival) == expected


def test_the_id_comes_from_the_content_so_a_replay_adds_nothing() -> None:
    first, again = check(v1()), check(v1())
    assert first.event_id == again.event_id
    # Key order does not matter; any field does.
    reordered = dict(reversed(list(v1().items())))
    assert check(reordered).event_id == first.event_id
    assert check(v1(signal=21.0)).event_id != first.event_id
    assert check(v1(timestamp="09:15:03")).event_id != first.event_id


@pytest.mark.parametrize(
    ("signal", "expected"), [(99, None), (99.0, None), (0, -113), (31.0, -51), ("20", -73)]
)
def test_signal_goes_from_asu_to_dbm_with_99_unknown(signal, expected) -> None:
    assert check(v1(signal=signal)).event["signal_dbm"] == expected


@pytest.mark.parametrize(
    ("doc", "reasons"),
    [
        (v1(signal=55.0), ["out_of_range_signal_dbm"]),  # not a valid ASU: -3 dBm
        (v1(timestamp="quarter past nine"), ["bad_format_event_time"]),
        (v1(timestamp=915), ["bad_type_event_time"]),
        (v1(operator=...), ["missing_operator"]),
        (v1(status=...), ["missing_status"]),
        (v1(postal_code="Barcelona"), []),  # kept as text: a postal code is any short text
    ],
)
def test_a_v1_record_that_does_not_convert_is_quarantined_with_its_reason(doc, reasons) -> None:
    assert check(doc).reasons == reasons


@pytest.mark.parametrize(
    "doc",
    [
        {"hour": "09:15:02", "operator": "Movistar", "signal": 20.0},  # neither shape
        {"operator": "Movistar", "status": 0},
        {"timestamp": "09:15:02", "event_time": "2026-12-04T09:15:02Z", "status": 0},
    ],
)
def test_a_record_of_neither_shape_keeps_its_exact_reasons(doc) -> None:
    # What the contract alone says (a record with event_time is not version 1).
    assert check(doc).reasons == validate_payload(json.dumps(doc), ARRIVAL).reasons
    assert "missing_event_id" in check(doc).reasons


def test_postal_codes_are_normalised_as_in_the_csv_replay() -> None:
    assert legacy.postal_code("250236.0") == "250236"
    assert legacy.postal_code(80333.0) == "080333"
    assert legacy.postal_code("8001") == "008001"
    assert legacy.postal_code("-1") == "-1"
    assert legacy.postal_code("08001A") == "08001A"


# --- banners are not operators -----------------------------------------------------------


@pytest.mark.parametrize(
    "banner",
    ["Solo llamadas de emergencia", "SOLO LLAMADAS DE EMERGENCIA", " Emergency calls only "],
)
def test_an_emergency_banner_counts_under_no_operator_and_means_emergency_only(banner) -> None:
    verdict = check(v1(operator=banner, network=banner, status=0))
    assert verdict.reasons == []
    assert verdict.event["operator"] is None
    assert verdict.event["status"] == 2
    assert verdict.event["status_label"] == "EMERGENCY_ONLY"
    # Position, signal and the rest stay.
    assert verdict.event["signal_dbm"] == -73
    assert verdict.event["postal_code"] == "080333"


def test_a_banner_keeps_a_status_other_than_in_service() -> None:
    assert check(v1(operator="Solo llamadas de emergencia", status=3)).event["status"] == 3
    assert check(v1(operator="Sin servicio", status=0)).event["status"] == 1


def test_banners_are_data_in_the_alias_table() -> None:
    banners = load_banners()
    assert banners["solo llamadas de emergencia"] == 2
    assert banners["no service"] == 1


# --- the real capture, sent the way the earlier producers sent it --------------------------


def v1_rows() -> list[dict]:
    """mobile-logs.csv as the earlier producers sent it: one JSON object per row."""
    import pandas as pd
    from helpers import MOBILE_LOGS

    frame = pd.read_csv(MOBILE_LOGS, dtype=str, keep_default_na=False)
    rows = []
    for row in frame.to_dict("records"):
        record = {
            "timestamp": row["hour"],
            "operator": row["operator"],
            "network": row["network"],
            "provider": row["provider"],
            "activity": row["activity"],
            "postal_code": row["postal_code"],
            "signal": float(row["signal"]),
            "precision": float(row["precission"]),
            "status": int(row["status"]),
            "lat": float(row["lat"]),
            "long": float(row["long"]),
        }
        rows.append({k: v for k, v in record.items() if v != ""})
    return rows


def test_the_real_capture_in_the_v1_shape_gives_the_csv_replays_kpis(
    spark, tmp_path, csv_valid_rows
) -> None:
    from helpers import build_lake

    from backend import kpis
    from backend.engine import DuckDBEngine
    from backend.queries import Window, committed_batch

    records = [json.dumps(row) for row in v1_rows()]
    lake = build_lake(spark, tmp_path / "lake", [records[:500], records[500:], records[:10]])
    engine = DuckDBEngine(lake)
    batch = committed_batch(engine)
    signal = kpis.query_signal(engine, batch, Window()).set_index("operator")
    expected = csv_valid_rows.dropna(subset=["operator_key"]).groupby("operator_key")
    assert signal["signal_samples"].sum() == len(csv_valid_rows) - 9 == 985
    movistar = expected.get_group("movistar")
    assert signal.loc["Movistar", "avg_signal_dbm"] == pytest.approx(movistar["signal_dbm"].mean())
    assert signal.loc["Movistar", "signal_samples"] == len(movistar)
    status = kpis.query_status(engine, batch, Window())
    assert status["events"].sum() == len(csv_valid_rows) == 994
    emergency = status[status["status_label"] == "EMERGENCY_ONLY"]["events"].sum()
    assert emergency == (csv_valid_rows["status"] == 2).sum() == 9
    # The replayed first ten records were recognised as the same events.
    ops = engine.run("SELECT sum(duplicates) AS d, sum(quarantine_rows) AS q FROM ops_files")
    invalid_first_ten = sum(
        bool(validate_payload(r, datetime.now(UTC), arrival=datetime.now(UTC)).reasons)
        for r in records[:10]
    )
    assert int(ops.d.iloc[0]) == 10 - invalid_first_ten == 9
    assert int(ops.q.iloc[0]) == 1000 - 994 + invalid_first_ten
