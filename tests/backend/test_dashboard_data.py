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
from conftest import MOBILE_LOGS, build_lake, event, replay_day

from backend import dashboard_data as data
from backend.engine import DuckDBEngine
from backend.queries import Filters, Window, run_kpi
from glue_job.contract import ALIASES_FILE, STATUS_LABELS

INJECTIONS = [
    "' OR '1'='1",
    "Movistar' --",
    "x'); DROP TABLE gold_operator_minute; --",
    "080193\n' UNION SELECT 1, 2, 3 --",
    "%",
    "Movistar\nYoigo' OR 1=1 --",
]


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


def _canonical_names(rows: pd.DataFrame) -> dict[str, str]:
    """operator key -> the name the dashboard shows, read from the alias table as data."""
    aliases = pd.read_csv(ALIASES_FILE)
    return dict(zip(aliases["alias"].str.casefold(), aliases["operator"], strict=True))


def _bands(dbm: pd.Series) -> pd.Series:
    """The contract's bands, written out again: excellent >= -80, good >= -90, fair >= -100."""
    return pd.cut(
        dbm,
        bins=[-1000, -100, -90, -80, 0],
        right=False,
        labels=["poor", "fair", "good", "excellent"],
    )


# --- pure helpers -------------------------------------------------------------------------


def test_filters_bind_each_list_as_text_parameters():
    filters = Filters(operators=[" Yoigo", "Movistar", "", "Movistar"], postal_codes=("  ",))
    assert filters.operators == ("Movistar", "Yoigo")
    assert filters.postal_codes == ()
    # Each list in four parameters that concatenate to it (Athena's 1,024-character limit).
    assert filters.params() == ["Movistar\nYoigo", "", "", "", "", "", "", ""]
    assert Filters().is_empty
    assert Filters(postal_codes=["080193"]) == Filters(postal_codes=("080193",))


def test_window_between_covers_whole_minutes_in_order():
    start = datetime(2026, 3, 1, 10, 15, 42, tzinfo=UTC)
    end = datetime(2026, 3, 1, 12, 0, 5, tzinfo=UTC)
    window = data.window_between(start, end)
    assert (window.since, window.until) == (
        datetime(2026, 3, 1, 10, 15, tzinfo=UTC),
        datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
    )
    assert data.window_between(end, start) == window
    same = data.window_between(start, start)
    assert same.until - same.since == timedelta(minutes=1)


def test_previous_window_has_the_same_length_just_before():
    window = data.window_for_preset("1 h", datetime(2026, 3, 1, 12, 30, 45, tzinfo=UTC))
    before = data.previous_window(window)
    assert before == Window(
        since=datetime(2026, 3, 1, 10, 31, tzinfo=UTC),
        until=datetime(2026, 3, 1, 11, 31, tzinfo=UTC),
    )
    assert data.previous_window(Window()) is None


@pytest.mark.parametrize(
    ("span", "bucket"),
    [
        (timedelta(0), "minute"),
        (timedelta(hours=3), "minute"),
        (timedelta(hours=4), "5 min"),
        (timedelta(hours=24), "5 min"),
        (timedelta(days=7), "hour"),
        (timedelta(days=30), "day"),
    ],
)
def test_pick_bucket_fits_the_span(span, bucket):
    first = datetime(2026, 3, 1, tzinfo=UTC)
    assert data.pick_bucket(first, first + span) == bucket
    assert data.pick_bucket(None, None) == "minute"


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


def test_pivot_status_one_row_per_postal_code_worst_out_of_service_share_first():
    long = pd.DataFrame(
        {
            "postal_code": ["080001", "080001", None, "250001", "280001", "280001"],
            "status_label": [
                "IN_SERVICE",
                "OUT_OF_SERVICE",
                "IN_SERVICE",
                "POWER_OFF",
                "IN_SERVICE",
                "OUT_OF_SERVICE",
            ],
            "events": [3, 1, 7, 2, 9, 3],
        }
    )
    wide = data.pivot_status(long)
    assert list(wide.columns) == [
        "postal_code",
        *STATUS_LABELS.values(),
        "events",
        "in_service_share",
        "out_of_service_share",
    ]
    # 1/4 and 3/12 tie on out-of-service share: the busier code first; then by events.
    assert wide["postal_code"].tolist() == ["280001", "080001", "(none)", "250001"]
    assert wide["events"].tolist() == [12, 4, 7, 2]
    assert wide["out_of_service_share"].tolist() == [0.25, 0.25, 0.0, 0.0]
    assert wide["in_service_share"].tolist() == [0.75, 0.75, 1.0, 0.0]
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


@pytest.mark.parametrize(
    ("bucket", "floor"), [("minute", "min"), ("5 min", "5min"), ("hour", "h"), ("day", "D")]
)
def test_trend_buckets_match_the_csv_and_add_up_to_the_kpi(
    engine, batch, valid_rows, bucket, floor
):
    trend = data.query_trend(engine, Window(), batch, bucket)
    kpi = run_kpi(engine, "kpi_signal", Window(), batch).set_index("operator")
    for operator, rows in trend.groupby("operator"):
        weighted = (rows["avg_signal_dbm"] * rows["signal_samples"]).sum()
        assert weighted / rows["signal_samples"].sum() == pytest.approx(
            kpi.loc[operator, "avg_signal_dbm"]
        )
    # Independently: the CSV's events per operator and bucket.
    expected = (
        valid_rows.assign(
            bucket=valid_rows["event_time"].dt.floor(floor),
            operator=valid_rows["operator_key"].map(_canonical_names(valid_rows)),
        )
        .groupby(["bucket", "operator"])
        .agg(events=("line", "size"), avg_signal_dbm=("signal_dbm", "mean"))
        .reset_index()
    )
    shown = trend[["bucket", "operator", "events", "avg_signal_dbm"]]
    pd.testing.assert_frame_equal(
        shown.sort_values(["bucket", "operator"], ignore_index=True),
        expected.sort_values(["bucket", "operator"], ignore_index=True),
        check_dtype=False,
    )


def test_trend_bucket_is_an_allowlisted_choice(engine, batch):
    with pytest.raises(ValueError, match="unknown trend bucket 'week'"):
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


# --- filters, against the CSV lake ----------------------------------------------------------


def test_operator_filter_keeps_only_those_operators(engine, batch, valid_rows):
    names = _canonical_names(valid_rows)
    rows = valid_rows.assign(operator=valid_rows["operator_key"].map(names))
    chosen = Filters(operators=("Movistar", "Yoigo"))
    picked = rows[rows["operator"].isin(chosen.operators)]

    signal = data.query_signal(engine, Window(), batch, chosen).set_index("operator")
    assert signal.index.tolist() == ["Movistar", "Yoigo"]
    expected = picked.groupby("operator")["signal_dbm"].agg(["mean", "size"])
    assert signal["avg_signal_dbm"].tolist() == pytest.approx(expected["mean"].tolist())
    assert signal["samples"].tolist() == expected["size"].tolist()

    precision = data.query_precision(engine, Window(), batch, chosen).set_index("operator")
    expected = picked.groupby("operator")["precission"].mean()
    assert precision["avg_precision_m"].tolist() == pytest.approx(expected.tolist())

    status = data.query_status(engine, Window(), batch, chosen)
    assert status["events"].sum() == len(picked)
    trend = data.query_trend(engine, Window(), batch, "hour", chosen)
    assert set(trend["operator"]) == {"Movistar", "Yoigo"}
    assert trend["events"].sum() == len(picked)


def test_postal_code_filter_reads_the_postal_partials(engine, batch, valid_rows):
    names = _canonical_names(valid_rows)
    rows = valid_rows.assign(
        operator=valid_rows["operator_key"].map(names),
        postal=valid_rows["postal_code"].map(
            lambda code: "(none)" if pd.isna(code) else str(int(float(code))).zfill(6)
        ),
    )
    # The busiest real code, and the events that carried none.
    code = rows.loc[rows["postal"] != "(none)", "postal"].value_counts().index[0]
    chosen = Filters(postal_codes=(code, "(none)"))
    picked = rows[rows["postal"].isin(chosen.postal_codes)]
    assert picked["operator"].nunique() > 1

    signal = data.query_signal(engine, Window(), batch, chosen).set_index("operator")
    expected = picked.groupby("operator")["signal_dbm"].agg(["mean", "size"])
    assert signal.index.tolist() == expected.index.tolist()
    assert signal["avg_signal_dbm"].tolist() == pytest.approx(expected["mean"].tolist())
    assert signal["samples"].tolist() == expected["size"].tolist()

    wide = data.pivot_status(data.query_status(engine, Window(), batch, chosen))
    assert sorted(wide["postal_code"]) == sorted(chosen.postal_codes)
    assert wide["events"].sum() == len(picked)

    both = Filters(operators=("Movistar",), postal_codes=(code,))
    movistar = picked[(picked["operator"] == "Movistar") & (picked["postal"] == code)]
    signal = data.query_signal(engine, Window(), batch, both)
    assert signal["samples"].sum() == len(movistar)

    trend = data.query_trend(engine, Window(), batch, "5 min", chosen)
    assert trend["events"].sum() == len(picked)
    assert trend["avg_precision_m"].isna().all()
    # Gold keeps GPS precision and signal bands per operator only: no postal-code answer.
    assert data.query_precision(engine, Window(), batch, chosen).empty
    assert data.query_signal_bands(engine, Window(), batch, chosen).empty


def test_signal_bands_count_the_csv_readings_per_band(engine, batch, valid_rows):
    names = _canonical_names(valid_rows)
    rows = valid_rows.assign(
        operator=valid_rows["operator_key"].map(names), band=_bands(valid_rows["signal_dbm"])
    )
    expected = pd.crosstab(rows["operator"], rows["band"]).reindex(columns=list(data.BANDS))
    bands = data.query_signal_bands(engine, Window(), batch).set_index("operator")
    assert bands.index.tolist() == expected.index.tolist()
    for band in data.BANDS:
        assert bands[band].tolist() == expected[band].tolist(), band
    assert (bands[list(data.BANDS)].sum(axis=1) == bands["samples"]).all()
    assert bands["samples"].sum() == len(valid_rows)


def test_choices_offer_every_operator_and_postal_code(engine, batch, valid_rows):
    choices = data.query_choices(engine, Window(), batch)
    assert choices["events"].sum() == len(valid_rows)
    operators = data.operator_options(choices, chosen=["SOMEONE ELSE"])
    present = set(valid_rows["operator_key"].map(_canonical_names(valid_rows)))
    assert operators == sorted({*present, "SOMEONE ELSE"})
    codes = data.postal_code_options(choices, chosen=["999999"])
    assert codes[0] == "(none)"  # the busiest: 223 events carried no postal code
    assert len(codes) == valid_rows["postal_code"].nunique() + 2
    assert codes[-1] == "999999"


@pytest.mark.parametrize("text", INJECTIONS)
def test_injection_through_the_filters_is_inert(engine, batch, text):
    for filters in (Filters(operators=(text,)), Filters(postal_codes=(text,))):
        assert data.query_signal(engine, Window(), batch, filters).empty
        assert data.query_status(engine, Window(), batch, filters).empty
        assert data.query_trend(engine, Window(), batch, "hour", filters).empty
    assert data.query_precision(engine, Window(), batch, Filters(operators=(text,))).empty
    assert data.query_signal_bands(engine, Window(), batch, Filters(operators=(text,))).empty
    # Nothing was dropped or changed.
    assert data.query_headline(engine, Window(), batch).events == 994
    assert data.committed_batch(engine) == batch


# --- a controlled lake: previous-window deltas and alerts -----------------------------------

RULES = data.AlertRules(outage_share=0.2, outage_window_minutes=15, signal_drop_db=5, min_events=20)
# The moment the alert lake is "now": its events sit at fixed minutes before it.
ANCHOR = datetime.now(UTC).replace(second=30, microsecond=0) - timedelta(minutes=2)


def alert_events(anchor: datetime) -> list[dict]:
    """Events a fixed number of minutes before ``anchor`` (see each group's comment)."""
    groups = [
        # (minutes ago, count, fields)
        # 280001: 12 of 30 out of service or emergency-only in the last 15 min -> alert.
        (5, 18, {"postal_code": "280001", "operator": "Orange", "signal_dbm": -88.0}),
        (5, 8, {"postal_code": "280001", "operator": "Orange", "status": 1, "signal_dbm": -88.0}),
        (6, 4, {"postal_code": "280001", "operator": "Orange", "status": 2, "signal_dbm": -88.0}),
        # 280002: 3 of 30 -> below the share.
        (5, 27, {"postal_code": "280002", "operator": "Orange", "signal_dbm": -88.0}),
        (5, 3, {"postal_code": "280002", "operator": "Orange", "status": 1, "signal_dbm": -88.0}),
        # 280003: all out of service, but only 10 events -> below the minimum.
        (5, 10, {"postal_code": "280003", "operator": "Orange", "status": 1, "signal_dbm": -88.0}),
        # 280004: its outage was 20 min ago, outside the window; in service since.
        (20, 30, {"postal_code": "280004", "operator": "Orange", "status": 1, "signal_dbm": -88.0}),
        (5, 20, {"postal_code": "280004", "operator": "Orange", "signal_dbm": -88.0}),
        # 280005: exactly at the share (4 of 20) -> not above it.
        (5, 16, {"postal_code": "280005", "operator": "Orange", "signal_dbm": -88.0}),
        (5, 4, {"postal_code": "280005", "operator": "Orange", "status": 1, "signal_dbm": -88.0}),
        # No postal code: never a place to alert on.
        (5, 25, {"postal_code": ..., "operator": "Jazztel", "status": 1, "signal_dbm": -90.0}),
        # Movistar: -80 dBm the hour before, -90 this hour -> a 10 dB drop.
        (90, 25, {"operator": "Movistar", "signal_dbm": -80.0, "precision_m": 20.0}),
        (30, 25, {"operator": "Movistar", "signal_dbm": -90.0, "precision_m": 8.0}),
        (30, 5, {"operator": "Movistar", "signal_dbm": ..., "precision_m": ...}),
        # Yoigo: a 30 dB drop, but only 10 readings the hour before.
        (90, 10, {"operator": "Yoigo", "signal_dbm": -70.0, "postal_code": "080001"}),
        (30, 25, {"operator": "Yoigo", "signal_dbm": -100.0, "postal_code": "080001"}),
        # Vodafone improves; Orange falls by 3 dB only (its -88 dBm events above).
        (90, 25, {"operator": "Vodafone", "signal_dbm": -95.0, "status": 3}),
        (30, 25, {"operator": "Vodafone", "signal_dbm": -85.0}),
        (90, 25, {"operator": "Orange", "signal_dbm": -85.0, "postal_code": "280009"}),
    ]
    events = []
    for minutes, count, fields in groups:
        moment = anchor - timedelta(minutes=minutes)
        for _ in range(count):
            events.append(
                {
                    "event_id": f"alert-{len(events)}",
                    "event_time": moment.isoformat(),
                    "status": 0,
                    **fields,
                }
            )
    return events


def alert_frame(events: list[dict]) -> pd.DataFrame:
    """The events as the contract reads them, defaults from conftest.event filled in."""
    import json

    rows = pd.DataFrame([json.loads(event(**e)) for e in events])
    rows["event_time"] = pd.to_datetime(rows["event_time"], utc=True)
    rows["minute"] = rows["event_time"].dt.floor("min")
    return rows


@pytest.fixture(scope="module")
def alert_lake(spark, tmp_path_factory):
    events = alert_events(ANCHOR)
    root = tmp_path_factory.mktemp("alert-lake") / "lake"
    half = len(events) // 2
    build_lake(
        spark, root, [[event(**e) for e in events[:half]], [event(**e) for e in events[half:]]]
    )
    return DuckDBEngine(root), alert_frame(events)


def test_alerts_flag_outages_and_signal_drops(alert_lake):
    engine, rows = alert_lake
    alerts = data.query_alerts(engine, data.committed_batch(engine), ANCHOR, RULES)

    # Independently: the last 15 minutes per postal code, and two hours per operator.
    until = ANCHOR.replace(second=0) + timedelta(minutes=1)
    recent = rows[(rows["minute"] >= until - timedelta(minutes=15)) & rows["postal_code"].notna()]
    per_code = recent.groupby("postal_code").agg(
        events=("status", "size"), outage_events=("status", lambda s: s.isin([1, 2]).sum())
    )
    per_code["outage_share"] = per_code["outage_events"] / per_code["events"]
    flagged = per_code[(per_code["events"] >= 20) & (per_code["outage_share"] > 0.2)]
    assert flagged.index.tolist() == ["280001"]
    assert alerts.outages["postal_code"].tolist() == ["280001"]
    assert alerts.outages["events"].tolist() == [30]
    assert alerts.outages["outage_events"].tolist() == [12]
    assert alerts.outages["outage_share"].tolist() == pytest.approx([0.4])

    hour = timedelta(hours=1)
    current = rows[rows["minute"] >= until - hour]
    previous = rows[(rows["minute"] >= until - 2 * hour) & (rows["minute"] < until - hour)]
    now_dbm = current.groupby("operator")["signal_dbm"].agg(["mean", "count"])
    before_dbm = previous.groupby("operator")["signal_dbm"].agg(["mean", "count"])
    both = now_dbm.join(before_dbm, lsuffix="_now", rsuffix="_before", how="inner")
    both["drop"] = both["mean_before"] - both["mean_now"]
    dropped = both[(both["count_now"] >= 20) & (both["count_before"] >= 20) & (both["drop"] > 5)]
    assert dropped.index.tolist() == ["Movistar"]
    drops = alerts.signal_drops.set_index("operator")
    assert drops.index.tolist() == ["Movistar"]
    assert drops.loc["Movistar", "drop_db"] == pytest.approx(dropped.loc["Movistar", "drop"])
    assert drops.loc["Movistar", "current_dbm"] == pytest.approx(-90.0)
    assert drops.loc["Movistar", "previous_dbm"] == pytest.approx(-80.0)
    assert drops.loc["Movistar", "current_samples"] == 25
    assert alerts.count == 2
    assert alerts.outage_window == Window(since=until - timedelta(minutes=15), until=until)


def test_alert_thresholds_come_from_the_rules(alert_lake):
    engine, _ = alert_lake
    batch = data.committed_batch(engine)
    loose = data.AlertRules(
        outage_share=0.05, outage_window_minutes=15, signal_drop_db=2, min_events=10
    )
    alerts = data.query_alerts(engine, batch, ANCHOR, loose)
    # 280002 (10 %) and 280003 (10 events, all out) now count; 280005 is at 20 %.
    assert alerts.outages["postal_code"].tolist() == ["280003", "280001", "280005", "280002"]
    assert alerts.signal_drops["operator"].tolist() == ["Yoigo", "Movistar", "Orange"]
    # Twenty minutes back, 280004's outage is inside the window.
    earlier = data.query_alerts(engine, batch, ANCHOR - timedelta(minutes=10), RULES)
    assert "280004" in earlier.outages["postal_code"].tolist()
    # Nothing is committed at batch -1.
    assert data.query_alerts(engine, -1, ANCHOR, RULES).count == 0


def test_headline_change_against_the_previous_window(alert_lake):
    engine, rows = alert_lake
    batch = data.committed_batch(engine)
    window = data.window_for_preset("1 h", ANCHOR)
    change = data.query_headline_change(engine, window, batch)
    assert change.previous_window == data.previous_window(window)

    def expected(since, until) -> dict:
        part = rows[
            (rows["minute"] >= pd.Timestamp(since)) & (rows["minute"] < pd.Timestamp(until))
        ]
        return {
            "events": len(part),
            "avg_signal_dbm": part["signal_dbm"].mean(),
            "avg_precision_m": part["precision_m"].mean(),
            "in_service_share": (part["status"] == 0).mean(),
            "operators": part["operator"].nunique(),
            "postal_codes": part["postal_code"].nunique(),
        }

    now = expected(window.since, window.until)
    before = expected(change.previous_window.since, change.previous_window.until)
    assert now["events"] > 0
    assert before["events"] > 0
    for name in now:
        assert getattr(change.current, name) == pytest.approx(now[name]), name
        assert getattr(change.previous, name) == pytest.approx(before[name]), name
        assert change.change(name) == pytest.approx(now[name] - before[name]), name
    assert change.change("avg_signal_dbm") < 0  # Movistar and Orange fell
    assert change.change("avg_precision_m") < 0  # Movistar's fixes got sharper

    everything = data.query_headline_change(engine, Window(), batch)
    assert everything.previous is None
    assert everything.change("events") is None
    assert everything.current.events == len(rows)
