"""backend.home: the headline and its change, freshness and alerts, against real lakes."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pandas as pd
import pyarrow.parquet as pq
import pytest
from helpers import (
    build_lake,
    drop_running_figures,
    event,
    raw_rows,
    record_queries,
    replay_day,
)

from backend import home, kpis, queries, windows
from backend.engine import DuckDBEngine
from backend.queries import Window
from glue_job.batch import BatchProcessor
from glue_job.lake import ParquetLake
from glue_job.schemas import RAW_SCHEMA


@pytest.mark.parametrize(
    ("age", "level"),
    [(None, "red"), (0, "green"), (59.9, "green"), (60, "amber"), (299, "amber"), (300, "red")],
)
def test_rate_freshness_thresholds(age, level):
    assert home.rate_freshness(age, 60, 300) == level


def test_headline_over_everything_matches_the_csv(csv_engine, csv_batch, csv_valid_rows):
    headline = home.query_headline(csv_engine, csv_batch, Window())
    assert headline.events == len(csv_valid_rows) == 994
    assert headline.avg_signal_dbm == pytest.approx(csv_valid_rows["signal_dbm"].mean())
    assert headline.signal_samples == len(csv_valid_rows)
    assert headline.avg_precision_m == pytest.approx(csv_valid_rows["precission"].mean())
    assert headline.in_service_share == pytest.approx((csv_valid_rows["status"] == 0).mean())
    assert headline.operators == csv_valid_rows["operator_key"].nunique()
    assert headline.postal_codes == csv_valid_rows["postal_code"].nunique() == 131
    assert headline.first_minute == csv_valid_rows["event_time"].min().floor("min")
    assert headline.last_minute == csv_valid_rows["event_time"].max().floor("min")


def test_headline_respects_the_time_window(csv_engine, csv_batch, csv_valid_rows):
    now = datetime.combine(replay_day(), time(12, 30, 30), tzinfo=UTC)
    window = windows.window_for_preset("1 h", now)
    headline = home.query_headline(csv_engine, csv_batch, window)
    inside = csv_valid_rows[
        (csv_valid_rows["event_time"] >= pd.Timestamp(window.since))
        & (csv_valid_rows["event_time"] < pd.Timestamp(window.until))
    ]
    assert 0 < headline.events == len(inside) < len(csv_valid_rows)
    assert headline.avg_signal_dbm == pytest.approx(inside["signal_dbm"].mean())


def test_headline_reads_only_the_given_snapshot(csv_engine, csv_valid_rows):
    first_batch = home.query_headline(csv_engine, 0, Window())
    everything = home.query_headline(csv_engine, 1, Window())
    # The fixture commits the first half of the file as batch 0.
    first_half = csv_valid_rows[csv_valid_rows["line"] <= 1 + 500]
    assert first_batch.events == len(first_half)
    assert everything.events == len(csv_valid_rows)
    assert home.query_headline(csv_engine, -1, Window()).is_empty


def test_freshness_reads_the_newest_committed_batch(
    csv_engine, csv_batch, csv_lake, csv_valid_rows
):
    ops = pq.read_table(csv_lake / "_ops").to_pandas()
    last_commit = pd.Timestamp(ops["batch_end"].max()).tz_convert(UTC).to_pydatetime()
    fresh = home.query_freshness(
        csv_engine, csv_batch, None, (60, 300), now=last_commit + timedelta(seconds=5)
    )
    assert fresh.last_commit == last_commit
    assert fresh.newest_event == csv_valid_rows["event_time"].max()
    assert fresh.batches == 2
    assert (fresh.level, fresh.age_seconds) == ("green", 5.0)
    later = fresh.rated_at(last_commit + timedelta(minutes=2), 60, 300)
    assert later.level == "amber"
    assert fresh.rated_at(last_commit + timedelta(hours=1), 60, 300).level == "red"


def test_freshness_reads_one_commit_row_and_answers_as_every_row_does(spark, tmp_path, monkeypatch):
    """Each committed batch's own row answers the freshness line as the scan of every _ops
    row does. In a lake whose rows predate the running figures the scan answers, until
    the next commit row carries them."""
    late = (datetime.now(UTC) - timedelta(hours=3)).isoformat()
    batches = [[event(event_id="a")], ["not json"], [], [event(event_id="late", event_time=late)]]
    root = build_lake(spark, tmp_path / "lake", batches)
    engine = DuckDBEngine(root)

    def scanned(batch: int) -> tuple:
        row = queries.run_query(engine, "freshness_scan", batch=batch).iloc[0]
        moments = (row[c] for c in ("last_commit", "newest_event", "newest_arrival"))
        return (*(pd.Timestamp(m).tz_convert(UTC) for m in moments), int(row["batches"]))

    expected = [scanned(batch) for batch in range(len(batches))]
    assert [facts[-1] for facts in expected] == [1, 2, 2, 3]
    ran = record_queries(monkeypatch)
    for batch in range(len(batches)):
        fresh = home.query_freshness(engine, batch, None, (60, 300))
        facts = (fresh.last_commit, fresh.newest_event, fresh.newest_arrival, fresh.batches)
        assert facts == expected[batch], batch
    fast, _ = queries.bind(queries.load_sql("freshness"), {"batch": 0})
    assert [sql for sql, _ in ran] == [fast] * len(batches)  # one row each, no scan

    # The same lake as a job before the running figures left it: commit rows without them
    # (and no checksum to contradict the rewrite). The scan answers; then a new job's first
    # commit row carries them again, beside the old files.
    drop_running_figures(root)
    engine = DuckDBEngine(root)
    ran.clear()
    fresh = home.query_freshness(engine, 3, None, (60, 300))
    assert (fresh.last_commit, fresh.newest_event, fresh.newest_arrival, fresh.batches) == (
        expected[3]
    )
    scan, _ = queries.bind(queries.load_sql("freshness_scan"), {"batch": 0})
    assert scan in [sql for sql, _ in ran]

    restarted = BatchProcessor(spark, ParquetLake(spark, str(root)), log=lambda _m: None)
    restarted.process_batch(spark.createDataFrame(raw_rows([], start=50), RAW_SCHEMA), 4)
    engine = DuckDBEngine(root)
    ran.clear()
    fresh = home.query_freshness(engine, 4, None, (60, 300))
    assert (fresh.last_commit, fresh.newest_event, fresh.newest_arrival, fresh.batches) == (
        expected[3]
    )
    assert [sql for sql, _ in ran] == [fast]


def test_empty_lake_gives_empty_results(tmp_path):
    engine = DuckDBEngine(tmp_path / "lake")
    batch = queries.committed_batch(engine)
    assert batch == -1
    assert home.query_headline(engine, batch, Window()).is_empty
    fresh = home.query_freshness(engine, batch, None, (60, 300))
    assert (fresh.has_data, fresh.level, fresh.batches) == (False, "red", 0)
    assert kpis.query_signal(engine, batch, Window()).empty
    assert kpis.pivot_status(kpis.query_status(engine, batch, Window())).empty
    trend = kpis.query_trend(engine, batch, Window(), "minute")
    assert trend.empty
    assert "avg_signal_dbm" in trend.columns


RULES = home.AlertRules(outage_share=0.2, outage_window_minutes=15, signal_drop_db=5, min_events=20)
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
    alerts = home.query_alerts(
        engine, queries.committed_batch(engine), home.alert_span(RULES, ANCHOR), RULES
    )

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
    batch = queries.committed_batch(engine)
    loose = home.AlertRules(
        outage_share=0.05, outage_window_minutes=15, signal_drop_db=2, min_events=10
    )
    alerts = home.query_alerts(engine, batch, home.alert_span(loose, ANCHOR), loose)
    # 280002 (10 %) and 280003 (10 events, all out) now count; 280005 is at 20 %.
    assert alerts.outages["postal_code"].tolist() == ["280003", "280001", "280005", "280002"]
    assert alerts.signal_drops["operator"].tolist() == ["Yoigo", "Movistar", "Orange"]
    # Twenty minutes back, 280004's outage is inside the window.
    earlier = home.query_alerts(
        engine, batch, home.alert_span(RULES, ANCHOR - timedelta(minutes=10)), RULES
    )
    assert "280004" in earlier.outages["postal_code"].tolist()
    # Nothing is committed at batch -1.
    assert home.query_alerts(engine, -1, home.alert_span(RULES, ANCHOR), RULES).count == 0


def test_headline_change_against_the_previous_window(alert_lake):
    engine, rows = alert_lake
    batch = queries.committed_batch(engine)
    window = windows.window_for_preset("1 h", ANCHOR)
    change = home.query_headline_change(engine, batch, window)
    assert change.previous_window == windows.previous_window(window)

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

    everything = home.query_headline_change(engine, batch, Window())
    assert everything.previous is None
    assert everything.change("events") is None
    assert everything.current.events == len(rows)
