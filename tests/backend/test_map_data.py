"""backend.map_data against lakes the real job built, checked with independent pandas sums.

The mobile-logs.csv lake gives real centroids (every row there has a position and status
IN_SERVICE); a small hand-made lake covers what the capture lacks: out-of-service events,
events without a position or postal code, and a postal code that looks like an attack.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, time, timedelta

import h3
import pandas as pd
import pytest
from helpers import MOBILE_LOGS, build_lake, event, replay_day

from backend import map_data
from backend.engine import DuckDBEngine
from backend.queries import Window, committed_batch
from glue_job.contract import H3_RESOLUTIONS, STATUS_LABELS

HOSTILE = "<b>x</b>' OR '1'='1' --; DROP TABLE ops"
STORED = "<b>*x*</b>'--"  # fits the contract's 16 characters, so it reaches gold


@pytest.fixture(scope="module")
def engine(csv_lake):
    return DuckDBEngine(csv_lake)


@pytest.fixture(scope="module")
def batch(engine) -> int:
    return committed_batch(engine)


@pytest.fixture(scope="module")
def valid_rows() -> pd.DataFrame:
    """CSV rows the contract accepts (an operator, ASU 0-31), mapped with pandas alone."""
    rows = pd.read_csv(MOBILE_LOGS)
    valid = rows[rows["operator"].notna() & rows["signal"].between(0, 31)].copy()
    valid["signal_dbm"] = 2 * valid["signal"] - 113
    valid["operator_key"] = valid["operator"].str.strip().str.casefold()
    coded = valid["postal_code"].notna()
    valid["code"] = None
    valid.loc[coded, "code"] = valid.loc[coded, "postal_code"].astype(int).astype(str).str.zfill(6)
    return valid


def expected_centroids(valid_rows: pd.DataFrame) -> pd.DataFrame:
    coded = valid_rows[valid_rows["code"].notna()]
    return (
        coded.groupby("code")
        .agg(
            latitude=("lat", "mean"),
            longitude=("long", "mean"),
            events=("code", "size"),
            avg_signal_dbm=("signal_dbm", "mean"),
        )
        .reset_index()
        .rename(columns={"code": "postal_code"})
    )


# --- the map over mobile-logs.csv ---------------------------------------------------------


def test_centroids_are_the_mean_position_of_each_postal_codes_events(engine, batch, valid_rows):
    postal = map_data.query_postal_map(engine, batch, Window())
    expected = expected_centroids(valid_rows)

    shown = postal.points
    assert list(shown.columns) == list(map_data.POINT_COLUMNS)
    assert shown["postal_code"].tolist() == sorted(expected["postal_code"])
    merged = shown.merge(expected, on="postal_code", suffixes=("", "_csv"))
    assert len(merged) == len(expected) == 131
    for column in ("latitude", "longitude", "avg_signal_dbm"):
        assert merged[column].to_numpy() == pytest.approx(merged[f"{column}_csv"].to_numpy())
    assert (merged["events"] == merged["events_csv"]).all()
    assert (shown["positions"] == shown["events"]).all()  # every CSV row has a position
    assert (shown["out_of_service_share"] == 0).all()  # and is IN_SERVICE


def test_what_the_map_leaves_out_is_counted(engine, batch, valid_rows):
    postal = map_data.query_postal_map(engine, batch, Window())
    assert postal.events == len(valid_rows) == 994
    assert postal.without_postal_code == valid_rows["code"].isna().sum() == 223
    assert postal.without_position == postal.codes_without_position == 0
    assert postal.excluded == 223
    assert postal.points["events"].sum() + postal.excluded == postal.events


def test_the_map_reads_committed_batches_and_the_window_only(engine, batch, valid_rows):
    assert batch == 1
    first_half = map_data.query_postal_map(engine, 0, Window())
    whole = map_data.query_postal_map(engine, batch, Window())
    assert 0 < first_half.events < whole.events

    nothing_committed = map_data.query_postal_map(engine, -1, Window())
    assert nothing_committed.is_empty
    assert nothing_committed.points.empty

    far_future = datetime(2999, 1, 1, tzinfo=UTC)
    empty = map_data.query_postal_map(
        engine, batch, Window(far_future, far_future + timedelta(hours=1))
    )
    assert empty.is_empty

    # One hour of the capture: only that hour's rows count.
    first_hour = int(valid_rows["hour"].min()[:2])
    since = datetime.combine(replay_day(), time(first_hour), tzinfo=UTC)
    hour = map_data.query_postal_map(engine, batch, Window(since, since + timedelta(hours=1)))
    assert hour.events == (valid_rows["hour"].str.slice(0, 2).astype(int) == first_hour).sum()


# --- one postal code over mobile-logs.csv -------------------------------------------------


def test_detail_breaks_a_postal_code_down_by_status_and_operator(engine, batch, valid_rows):
    coded = valid_rows[valid_rows["code"].notna()]
    code = coded.groupby("code")["operator_key"].nunique().sort_index().idxmax()
    rows = coded[coded["code"] == code]
    assert rows["operator_key"].nunique() > 1, "pick a code with several operators"

    detail = map_data.query_postal_detail(engine, batch, Window(), code)
    assert detail.area == code
    assert detail.events == len(rows)
    assert detail.avg_signal_dbm == pytest.approx(rows["signal_dbm"].mean())
    assert detail.signal_samples == len(rows)
    assert detail.out_of_service_share == 0.0
    assert detail.status["status_label"].tolist() == list(STATUS_LABELS.values())
    assert detail.status["events"].tolist() == [len(rows), 0, 0, 0]
    assert detail.status["share"].tolist() == [1.0, 0.0, 0.0, 0.0]

    operators = detail.operators.assign(key=detail.operators["operator"].str.casefold())
    expected = rows.groupby("operator_key")["signal_dbm"].agg(["size", "mean"])
    assert sorted(operators["key"]) == sorted(expected.index)
    for _, row in operators.iterrows():
        assert row["events"] == expected.loc[row["key"], "size"]
        assert row["avg_signal_dbm"] == pytest.approx(expected.loc[row["key"], "mean"])
    assert operators["events"].is_monotonic_decreasing


def test_trend_buckets_add_up_to_the_detail(engine, batch, valid_rows):
    coded = valid_rows[valid_rows["code"].notna()]
    code = coded["code"].value_counts().idxmax()
    rows = coded[coded["code"] == code]

    trend = map_data.query_postal_trend(engine, batch, Window(), code, "hour")
    assert trend["bucket"].dt.tz is not None
    per_hour = rows.groupby(rows["hour"].str.slice(0, 2)).agg(
        events=("code", "size"), avg=("signal_dbm", "mean")
    )
    assert trend["bucket"].dt.strftime("%H").tolist() == per_hour.index.tolist()
    assert trend["events"].tolist() == per_hour["events"].tolist()
    assert trend["IN_SERVICE"].tolist() == per_hour["events"].tolist()
    assert trend["avg_signal_dbm"].to_numpy() == pytest.approx(per_hour["avg"].to_numpy())

    five = map_data.query_postal_trend(engine, batch, Window(), code, "5 min")
    assert (five["bucket"].dt.minute % 5 == 0).all()
    assert five["events"].sum() == len(rows)

    with pytest.raises(ValueError, match="unknown trend bucket"):
        map_data.query_postal_trend(engine, batch, Window(), code, "week")


# --- coverage cells over mobile-logs.csv ----------------------------------------------------


@pytest.fixture(scope="module")
def placed_silver(engine, batch) -> pd.DataFrame:
    """Silver's events with a position, each given its H3 cells here, in pandas."""
    silver = engine.run(
        "SELECT latitude, longitude, operator, status, signal_dbm, event_time FROM silver "
        "WHERE commit_id <= ? AND latitude IS NOT NULL AND longitude IS NOT NULL",
        [batch],
    )
    for resolution in H3_RESOLUTIONS:
        silver[f"cell_{resolution}"] = [
            h3.latlng_to_cell(lat, lon, resolution)
            for lat, lon in zip(silver["latitude"], silver["longitude"], strict=True)
        ]
    return silver


def test_cell_gold_equals_an_h3_count_of_silver_in_pandas(engine, batch, placed_silver):
    assert len(placed_silver) > 900, "the capture's rows carry positions"
    gold = engine.run(
        "SELECT resolution, cell, coalesce(operator, '(none)') AS operator, "
        "sum(events) AS events, sum(signal_sum) AS signal_sum, sum(signal_count) AS readings, "
        "sum(status_in_service) AS in_service, sum(status_out_of_service) AS out_of_service, "
        "sum(signal_excellent + signal_good + signal_fair + signal_poor) AS banded "
        "FROM gold_cell_minute WHERE ? BETWEEN commit_id AND visible_through GROUP BY ALL",
        [batch],
    )
    for resolution in H3_RESOLUTIONS:
        mine = placed_silver.assign(
            cell=placed_silver[f"cell_{resolution}"],
            operator=placed_silver["operator"].fillna("(none)"),
        )
        expected = mine.groupby(["cell", "operator"]).agg(
            events=("cell", "size"),
            signal_sum=("signal_dbm", "sum"),
            readings=("signal_dbm", "count"),
            in_service=("status", lambda s: int((s == 0).sum())),
            out_of_service=("status", lambda s: int((s == 1).sum())),
        )
        got = gold[gold["resolution"] == resolution].set_index(["cell", "operator"])
        got = got.sort_index()
        expected = expected.sort_index()
        assert got.index.tolist() == expected.index.tolist()
        for column in ("events", "readings", "in_service", "out_of_service"):
            assert got[column].astype(int).tolist() == expected[column].tolist(), column
        assert got["banded"].astype(int).tolist() == expected["readings"].tolist()
        assert got["signal_sum"].to_numpy() == pytest.approx(expected["signal_sum"].to_numpy())


def test_cells_of_a_resolution_are_ratios_of_sums(engine, batch, placed_silver):
    for resolution in H3_RESOLUTIONS:
        cells = map_data.query_cells(engine, batch, Window(), resolution)
        expected = placed_silver.groupby(f"cell_{resolution}").agg(
            events=("status", "size"), avg=("signal_dbm", "mean")
        )
        assert cells["cell"].tolist() == sorted(expected.index)
        assert cells["events"].tolist() == expected["events"].tolist()
        assert cells["avg_signal_dbm"].to_numpy() == pytest.approx(expected["avg"].to_numpy())
        assert (cells["out_of_service_share"] == 0).all()  # the capture is all in service
        assert all(h3.get_resolution(c) == resolution for c in cells["cell"])
    with pytest.raises(ValueError, match="no coverage cells at H3 resolution 7"):
        map_data.query_cells(engine, batch, Window(), 7)


def test_a_cells_detail_and_trend_add_up_to_its_events(engine, batch, placed_silver):
    fine = f"cell_{H3_RESOLUTIONS[0]}"
    cell = placed_silver[fine].value_counts().idxmax()
    rows = placed_silver[placed_silver[fine] == cell]

    detail = map_data.query_cell_detail(engine, batch, Window(), cell)
    assert detail.area == cell
    assert detail.events == len(rows)
    assert detail.avg_signal_dbm == pytest.approx(rows["signal_dbm"].mean())
    assert detail.status["events"].tolist() == [len(rows), 0, 0, 0]
    assert detail.out_of_service_share == 0.0
    per_operator = rows["operator"].fillna("(no operator)").value_counts()
    assert dict(zip(detail.operators["operator"], detail.operators["events"], strict=True)) == (
        per_operator.to_dict()
    )

    trend = map_data.query_cell_trend(engine, batch, Window(), cell, "hour")
    assert trend["events"].sum() == len(rows)
    assert trend["IN_SERVICE"].sum() == len(rows)
    assert list(trend.columns) == list(map_data.TREND_COLUMNS)
    assert map_data.query_cell_detail(engine, batch, Window(), "' OR 1=1 --").is_empty


def test_a_postal_code_is_a_bound_value_never_sql(engine, batch):
    for attempt in ("' OR '1'='1", "080193'; DROP TABLE ops; --", HOSTILE, ""):
        detail = map_data.query_postal_detail(engine, batch, Window(), attempt)
        assert detail.is_empty
        assert detail.out_of_service_share is None
        assert detail.operators.empty
        assert detail.status["events"].sum() == 0
        assert map_data.query_postal_trend(engine, batch, Window(), attempt, "minute").empty
    assert committed_batch(engine) == batch  # ops is still there


# --- what the capture lacks ---------------------------------------------------------------


@pytest.fixture(scope="module")
def mixed_engine(spark, tmp_path_factory):
    def ev(n, **fields):
        return event(event_id=f"m-{n}", **fields)

    events = [
        ev(1, postal_code="080001", status=0, signal_dbm=-85.0, latitude=41.0, longitude=2.0),
        ev(2, postal_code="080001", status=1, signal_dbm=..., latitude=41.2, longitude=2.2),
        ev(3, postal_code="080001", status=0, signal_dbm=-95.0, latitude=..., longitude=...),
        ev(4, postal_code=STORED, status=2, signal_dbm=..., latitude=40.0, longitude=3.0),
        ev(5, postal_code="089999", latitude=..., longitude=...),
        ev(6, postal_code="089999", status=1, latitude=..., longitude=...),
        ev(7, postal_code=..., latitude=41.5, longitude=2.5),
        ev(8, postal_code=..., latitude=..., longitude=...),
    ]
    root = tmp_path_factory.mktemp("mixed-lake") / "lake"
    return DuckDBEngine(build_lake(spark, root, [events]))


def test_out_of_service_share_and_unplaceable_events(mixed_engine):
    postal = map_data.query_postal_map(mixed_engine, 0, Window())
    points = postal.points.set_index("postal_code")
    assert sorted(points.index) == sorted(["080001", STORED])

    a = points.loc["080001"]
    assert (a["latitude"], a["longitude"]) == pytest.approx((41.1, 2.1))
    assert a["events"] == 3
    assert a["positions"] == 2
    assert a["avg_signal_dbm"] == pytest.approx(-90.0)
    assert a["out_of_service_events"] == 1
    assert a["out_of_service_share"] == pytest.approx(1 / 3)

    stored = points.loc[STORED]
    assert (stored["latitude"], stored["longitude"]) == pytest.approx((40.0, 3.0))
    assert pd.isna(stored["avg_signal_dbm"])
    assert stored["signal_samples"] == 0

    assert postal.events == 8
    assert postal.without_postal_code == 2
    assert postal.without_position == 2
    assert postal.codes_without_position == 1
    assert postal.unplaced_in_mapped == 1
    assert postal.excluded == 4


def test_detail_of_a_postal_code_with_outages(mixed_engine):
    detail = map_data.query_postal_detail(mixed_engine, 0, Window(), "080001")
    assert detail.status.set_index("status_label")["events"].to_dict() == {
        "IN_SERVICE": 2,
        "OUT_OF_SERVICE": 1,
        "EMERGENCY_ONLY": 0,
        "POWER_OFF": 0,
    }
    assert detail.out_of_service_share == pytest.approx(1 / 3)
    assert detail.avg_signal_dbm == pytest.approx(-90.0)
    operators = detail.operators.set_index("operator")
    assert operators.loc["Movistar", "out_of_service_share"] == pytest.approx(1 / 3)

    trend = map_data.query_postal_trend(mixed_engine, 0, Window(), "080001", "minute")
    assert trend[["IN_SERVICE", "OUT_OF_SERVICE"]].sum().tolist() == [2, 1]

    stored = map_data.query_postal_detail(mixed_engine, 0, Window(), STORED)
    assert stored.events == 1
    assert stored.status.set_index("status_label").loc["EMERGENCY_ONLY", "events"] == 1


def test_cli_prints_the_coverage_cells(monkeypatch, capsys, csv_lake, placed_silver):
    from backend import cli

    monkeypatch.setenv("TELCOPULSE_HOME", str(csv_lake.parent))
    assert cli.main(["kpi", "cells", "--format", "json"]) == 0
    coarse = pd.read_json(io.StringIO(capsys.readouterr().out))
    assert list(coarse.columns) == [
        "cell",
        "events",
        "avg_signal_dbm",
        "samples",
        "out_of_service_events",
        "out_of_service_share",
    ]
    expected = placed_silver.groupby("cell_6").size()
    assert dict(zip(coarse["cell"], coarse["events"], strict=True)) == expected.to_dict()

    assert cli.main(["kpi", "cells", "--resolution", "8", "--format", "csv"]) == 0
    fine = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert fine["events"].sum() == len(placed_silver)
    assert len(fine) == placed_silver["cell_8"].nunique()
    with pytest.raises(SystemExit):
        cli.main(["kpi", "cells", "--resolution", "7"])
    assert "invalid choice: 7" in capsys.readouterr().err


def test_the_likely_bucket_comes_from_the_periods_that_hold_a_codes_events():
    # 10:01-12:59 exactly ("minute", under 3 h); hour periods 10:00-12:59 guess the same.
    # 10:01-13:00 exactly (2 h 59 min); hour periods 10:00-13:59 guess one coarser, which
    # the page then corrects from the breakdown's exact span.
    day = datetime(2026, 3, 2, tzinfo=UTC)
    points = pd.DataFrame(
        {
            "postal_code": ["28001", "28002", "28003"],
            "periods_from": [day.replace(hour=10)] * 2 + [pd.NaT],
            "periods_until": [
                day.replace(hour=12, minute=59),
                day.replace(hour=13, minute=59),
                pd.NaT,
            ],
        }
    )
    assert map_data.likely_bucket(points, "28001") == "minute"
    assert map_data.likely_bucket(points, "28002") == "5 min"
    assert map_data.likely_bucket(points, "28003") is None
    assert map_data.likely_bucket(points, "99999") is None
