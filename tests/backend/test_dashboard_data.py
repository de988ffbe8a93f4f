"""backend.dashboard_data against a lake the real job built from mobile-logs.csv.

Each KPI is checked against an independent pandas computation over the CSV itself
(ASU -> dBm, case variants merged, invalid rows dropped), so a bug shared by the
SQL and the job cannot hide.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import MOBILE_LOGS, replay_day

from backend import dashboard_data as data
from backend.engine import DuckDBEngine
from backend.queries import Window, run_kpi
from glue_job.contract import STATUS_LABELS


@pytest.fixture(scope="module")
def engine(csv_lake):
    return DuckDBEngine(csv_lake)


@pytest.fixture(scope="module")
def batch(engine) -> int:
    return data.committed_batch(engine)


@pytest.fixture(scope="module")
def valid_rows() -> pd.DataFrame:
    """The CSV rows the contract accepts, with their contract values, computed with pandas."""
    rows = pd.read_csv(MOBILE_LOGS, dtype={"postal_code": str, "operator": str})
    rows["line"] = rows.index + 2  # the header is line 1
    # Rows are rejected here only for what this file actually contains: an empty operator
    # and ASU readings outside 0-31 (which convert to more than -30 dBm).
    valid = rows[rows["operator"].notna() & rows["signal"].between(0, 31)].copy()
    valid["signal_dbm"] = 2 * valid["signal"] - 113
    valid["operator_key"] = valid["operator"].str.strip().str.casefold()
    valid["event_time"] = pd.to_datetime(
        replay_day().isoformat() + " " + valid["hour"], utc=True, format="%Y-%m-%d %H:%M:%S"
    )
    return valid


# --- pure helpers -------------------------------------------------------------------------


def test_window_for_preset_covers_whole_minutes_up_to_the_current_one():
    now = datetime(2026, 3, 1, 12, 30, 45, tzinfo=UTC)
    window = data.window_for_preset("15 min", now)
    assert window.since == datetime(2026, 3, 1, 12, 16, tzinfo=UTC)
    assert window.until == datetime(2026, 3, 1, 12, 31, tzinfo=UTC)
    day = data.window_for_preset("24 h", now)
    assert day.until - day.since == timedelta(hours=24)
    assert data.window_for_preset("all", now) == Window()
    # Within one minute the window does not move, so cached results keep matching.
    assert data.window_for_preset("1 h", now + timedelta(seconds=10)) == data.window_for_preset(
        "1 h", now
    )


def test_window_for_unknown_preset_names_the_choices():
    with pytest.raises(ValueError, match="15 min, 1 h, 24 h, 7 d, all"):
        data.window_for_preset("2 weeks")


@pytest.mark.parametrize(
    ("span", "unit"),
    [
        (timedelta(0), "minute"),
        (timedelta(hours=6), "minute"),
        (timedelta(hours=7), "hour"),
        (timedelta(days=14), "hour"),
        (timedelta(days=30), "day"),
    ],
)
def test_pick_trend_unit_by_data_span(span, unit):
    first = datetime(2026, 3, 1, tzinfo=UTC)
    assert data.pick_trend_unit(first, first + span) == unit


def test_pick_trend_unit_without_data():
    assert data.pick_trend_unit(None, None) == "minute"


@pytest.mark.parametrize(
    ("age", "level"),
    [(None, "red"), (0, "green"), (59.9, "green"), (60, "amber"), (299, "amber"), (300, "red")],
)
def test_rate_freshness_thresholds(age, level):
    assert data.rate_freshness(age, 60, 300) == level


def test_pivot_status_one_row_per_postal_code_busiest_first():
    long = pd.DataFrame(
        {
            "postal_code": ["080001", "080001", None, "250001"],
            "status_label": ["IN_SERVICE", "OUT_OF_SERVICE", "IN_SERVICE", "POWER_OFF"],
            "events": [3, 1, 7, 2],
        }
    )
    wide = data.pivot_status(long)
    assert list(wide.columns) == [
        "postal_code",
        *STATUS_LABELS.values(),
        "events",
        "in_service_share",
    ]
    assert wide["postal_code"].tolist() == ["(none)", "080001", "250001"]
    assert wide["events"].tolist() == [7, 4, 2]
    assert wide["in_service_share"].tolist() == [1.0, 0.75, 0.0]
    assert wide.loc[1, "OUT_OF_SERVICE"] == 1
    assert data.pivot_status(long.iloc[0:0]).empty


def test_top_postal_codes_keeps_every_status_of_the_busiest():
    long = pd.DataFrame(
        {
            "postal_code": ["a", "a", "b", "c"],
            "status_label": ["IN_SERVICE", "POWER_OFF", "IN_SERVICE", "IN_SERVICE"],
            "events": [1, 1, 5, 1],
        }
    )
    top = data.top_postal_codes(long, 2)
    assert sorted(top["postal_code"].unique()) == ["a", "b"]
    assert len(top) == 3


def test_known_operators_are_the_canonical_names():
    operators = data.known_operators()
    assert operators == sorted(operators)
    assert "Movistar" in operators
    assert "movistar" not in operators


# --- against the CSV lake -----------------------------------------------------------------


def test_headline_over_everything_matches_the_csv(engine, batch, valid_rows):
    headline = data.query_headline(engine, Window(), batch)
    assert headline.events == len(valid_rows) == 994
    assert headline.avg_signal_dbm == pytest.approx(valid_rows["signal_dbm"].mean())
    assert headline.signal_samples == len(valid_rows)
    assert headline.avg_precision_m == pytest.approx(valid_rows["precission"].mean())
    assert headline.in_service_share == pytest.approx((valid_rows["status"] == 0).mean())
    assert headline.operators == valid_rows["operator_key"].nunique()
    assert headline.postal_codes == valid_rows["postal_code"].nunique() == 131
    assert headline.first_minute == valid_rows["event_time"].min().floor("min")
    assert headline.last_minute == valid_rows["event_time"].max().floor("min")


def test_headline_respects_the_time_window(engine, batch, valid_rows):
    now = datetime.combine(replay_day(), time(12, 30, 30), tzinfo=UTC)
    window = data.window_for_preset("1 h", now)
    headline = data.query_headline(engine, window, batch)
    inside = valid_rows[
        (valid_rows["event_time"] >= pd.Timestamp(window.since))
        & (valid_rows["event_time"] < pd.Timestamp(window.until))
    ]
    assert 0 < headline.events == len(inside) < len(valid_rows)
    assert headline.avg_signal_dbm == pytest.approx(inside["signal_dbm"].mean())


def test_headline_reads_only_the_given_snapshot(engine, valid_rows):
    first_batch = data.query_headline(engine, Window(), 0)
    everything = data.query_headline(engine, Window(), 1)
    # The fixture commits the first half of the file as batch 0.
    first_half = valid_rows[valid_rows["line"] <= 1 + 500]
    assert first_batch.events == len(first_half)
    assert everything.events == len(valid_rows)
    assert data.query_headline(engine, Window(), -1).is_empty


def test_signal_merges_case_variants_like_the_csv(engine, batch, valid_rows):
    signal = data.query_signal(engine, Window(), batch).set_index("operator")
    movistar = valid_rows[valid_rows["operator_key"] == "movistar"]
    assert set(movistar["operator"]) == {"Movistar", "movistar"}
    assert signal.loc["Movistar", "avg_signal_dbm"] == pytest.approx(movistar["signal_dbm"].mean())
    assert signal.loc["Movistar", "samples"] == len(movistar) == 271
    assert "movistar" not in signal.index
    assert signal["samples"].sum() == len(valid_rows)
    assert signal["samples"].dtype == "int64"


def test_precision_matches_the_csv(engine, batch, valid_rows):
    precision = data.query_precision(engine, Window(), batch).set_index("operator")
    yoigo = valid_rows[valid_rows["operator_key"] == "yoigo"]
    assert precision.loc["Yoigo", "avg_precision_m"] == pytest.approx(yoigo["precission"].mean())
    assert precision.loc["Yoigo", "samples"] == len(yoigo)


def test_status_counts_per_postal_code_match_the_csv(engine, batch, valid_rows):
    wide = data.pivot_status(data.query_status(engine, Window(), batch)).set_index("postal_code")
    expected = valid_rows["postal_code"].fillna(-1)
    counts = expected.value_counts()
    assert wide.loc["(none)", "events"] == counts[-1] == 223
    sample = valid_rows["postal_code"].dropna().iloc[0]
    padded = str(int(float(sample))).zfill(6)
    assert wide.loc[padded, "events"] == counts[sample]
    assert wide["events"].sum() == len(valid_rows)


def test_trend_is_a_ratio_of_sums_that_adds_up_to_the_kpi(engine, batch):
    trend = data.query_trend(engine, Window(), batch, "hour")
    kpi = run_kpi(engine, "kpi_signal", Window(), batch).set_index("operator")
    assert trend["bucket"].dt.minute.eq(0).all()
    for operator, rows in trend.groupby("operator"):
        weighted = (rows["avg_signal_dbm"] * rows["signal_samples"]).sum()
        assert weighted / rows["signal_samples"].sum() == pytest.approx(
            kpi.loc[operator, "avg_signal_dbm"]
        )
    with pytest.raises(ValueError, match="unknown trend unit"):
        data.query_trend(engine, Window(), batch, "week")


def test_freshness_reads_the_newest_committed_batch(engine, batch, csv_lake, valid_rows):
    ops = pq.read_table(csv_lake / "_ops").to_pandas()
    last_commit = pd.Timestamp(ops["batch_end"].max()).tz_convert(UTC).to_pydatetime()
    fresh = data.query_freshness(
        engine, batch, amber_seconds=60, red_seconds=300, now=last_commit + timedelta(seconds=5)
    )
    assert fresh.last_commit == last_commit
    assert fresh.newest_event == valid_rows["event_time"].max()
    assert fresh.batches == 2
    assert (fresh.level, fresh.age_seconds) == ("green", 5.0)
    later = fresh.rated_at(last_commit + timedelta(minutes=2), 60, 300)
    assert later.level == "amber"
    assert fresh.rated_at(last_commit + timedelta(hours=1), 60, 300).level == "red"


def test_empty_lake_gives_empty_results(tmp_path):
    engine = DuckDBEngine(tmp_path / "lake")
    batch = data.committed_batch(engine)
    assert batch == -1
    assert data.query_headline(engine, Window(), batch).is_empty
    fresh = data.query_freshness(engine, batch, amber_seconds=60, red_seconds=300)
    assert (fresh.has_data, fresh.level, fresh.batches) == (False, "red", 0)
    assert data.query_signal(engine, Window(), batch).empty
    assert data.pivot_status(data.query_status(engine, Window(), batch)).empty
    trend = data.query_trend(engine, Window(), batch, "minute")
    assert trend.empty
    assert "avg_signal_dbm" in trend.columns
