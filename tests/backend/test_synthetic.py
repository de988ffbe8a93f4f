"""Synthetic events: distributions learnt from mobile-logs.csv, outages, bad records, seeds."""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from backend.replay import read_csv_events
from backend.synthetic import PROFILE_CSV, SyntheticGenerator, load_profile
from glue_job.contract import parse_event_time, validate_payload

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


class StepClock:
    """Event time that advances a fixed step per reading, like a steady 100 events/s."""

    def __init__(self, step: timedelta = timedelta(milliseconds=10)) -> None:
        self.now = START
        self.step = step

    def __call__(self) -> datetime:
        current = self.now
        self.now += self.step
        return current


def generate(n: int, **kwargs) -> tuple[SyntheticGenerator, list[bytes]]:
    kwargs.setdefault("clock", StepClock())
    generator = SyntheticGenerator(**kwargs)
    return generator, [generator.next_record() for _ in range(n)]


@pytest.fixture(scope="module")
def observed():
    """The CSV's own distributions, the yardstick for the synthetic ones."""
    events = [e for e in read_csv_events(PROFILE_CSV, START.date()) if e["operator"]]
    return {
        "operators": Counter(e["operator"] for e in events),
        "postal_codes": Counter(e["postal_code"] for e in events),
        "n": len(events),
    }


@pytest.fixture(scope="module")
def calm_events() -> list[dict]:
    """20k valid events with outages switched off, so base mixes can be measured."""
    _, records = generate(20_000, seed=7, outage_every_s=1e12)
    return [json.loads(record) for record in records]


def test_same_seed_and_clock_give_the_same_stream():
    _, first = generate(500, seed=42, invalid_rate=0.2)
    _, second = generate(500, seed=42, invalid_rate=0.2)
    _, other = generate(500, seed=43, invalid_rate=0.2)
    assert first == second
    assert first != other


def test_every_record_is_valid_without_an_invalid_rate(calm_events):
    verdicts = [validate_payload(json.dumps(e), START + timedelta(hours=1)) for e in calm_events]
    assert [v.reasons for v in verdicts if v.reasons] == []
    assert len({e["event_id"] for e in calm_events}) == len(calm_events)
    assert all(len(e["event_id"]) == 32 for e in calm_events)  # uuid4 hex


def test_operator_mix_matches_the_csv_including_case_variants(calm_events, observed):
    got = Counter(e["operator"] for e in calm_events)
    assert set(got) == set(observed["operators"])
    for operator, count in observed["operators"].items():
        expected = count / observed["n"]
        assert got[operator] / len(calm_events) == pytest.approx(expected, abs=0.012), operator
    # Canonicalisation has work to do: both casings are on the stream.
    assert got["Movistar"] > got["movistar"] > 0
    assert got["Yoigo"] > got["YOIGO"] > 0


def test_postal_codes_are_weighted_as_observed_and_a_fifth_have_none(calm_events, observed):
    got = Counter(e["postal_code"] for e in calm_events)
    n = len(calm_events)
    assert got[None] / n == pytest.approx(observed["postal_codes"][None] / observed["n"], abs=0.015)
    assert 0.18 < got[None] / n < 0.26
    assert got["080333"] / n == pytest.approx(51 / observed["n"], abs=0.008)
    assert set(got) <= set(observed["postal_codes"])


def test_positions_sit_near_the_real_postal_code_centroids(calm_events):
    centroids = load_profile().centroids
    distances = []
    for event in calm_events:
        if event["postal_code"] is None:
            continue
        lat, lon = centroids[event["postal_code"]]
        dy = (event["latitude"] - lat) * 111.32
        dx = (event["longitude"] - lon) * 111.32 * math.cos(math.radians(lat))
        distances.append(math.hypot(dx, dy))
    assert statistics.median(distances) == pytest.approx(1.18, abs=0.15)  # ~1 km jitter
    assert max(distances) < 8.0


def test_status_mix_and_signal_only_in_service(calm_events):
    statuses = Counter(e["status"] for e in calm_events)
    n = len(calm_events)
    assert statuses[0] / n == pytest.approx(0.97, abs=0.006)
    assert statuses[1] / n == pytest.approx(0.02, abs=0.004)
    assert statuses[2] / n == pytest.approx(0.005, abs=0.002)
    assert statuses[3] / n == pytest.approx(0.005, abs=0.002)
    assert all((e["signal_dbm"] is None) == (e["status"] != 0) for e in calm_events)


def test_signal_per_operator_follows_the_observed_distribution(calm_events):
    observed = load_profile().signal_by_operator
    by_operator = defaultdict(list)
    for event in calm_events:
        if event["signal_dbm"] is not None:
            by_operator[event["operator"]].append(event["signal_dbm"])
    for operator in ("Movistar", "vodafone ES", "Orange", "VIVO"):
        assert statistics.mean(by_operator[operator]) == pytest.approx(
            statistics.mean(observed[operator]), abs=1.5
        )
    assert statistics.mean(by_operator["Orange"]) > statistics.mean(by_operator["VIVO"])
    assert all(-140 <= value <= -30 for values in by_operator.values() for value in values)


def test_precision_follows_the_observed_spread(calm_events):
    observed = load_profile().precisions
    got = [e["precision_m"] for e in calm_events]
    assert statistics.median(got) == pytest.approx(statistics.median(observed), rel=0.15)
    assert min(got) >= 0


def test_about_one_percent_of_events_are_late_by_up_to_two_minutes():
    clock = StepClock()
    generator = SyntheticGenerator(seed=3, clock=clock, outage_every_s=1e12)
    lateness = []
    for _ in range(20_000):
        expected = clock.now
        event = generator.next_event()
        lateness.append((expected - parse_event_time(event["event_time"])).total_seconds())
    late = [value for value in lateness if value > 0]
    assert len(late) / len(lateness) == pytest.approx(0.01, abs=0.003)
    assert max(late) <= 120
    assert min(lateness) >= 0  # never in the future


def test_outages_take_a_postal_code_out_of_service_for_30_to_120_seconds():
    generator, records = generate(20_000, seed=11, outage_every_s=10.0)
    events = [json.loads(record) for record in records]
    outages = generator.outage_log

    assert len(outages) >= 5  # 200 s of event time, one start every ~10 s
    assert all(30 <= (o.end - o.start).total_seconds() <= 120 for o in outages)

    windows = defaultdict(list)
    for outage in outages:
        windows[outage.postal_code].append((outage.start, outage.end))
    inside, outside = [], []
    for event in events:
        moment = parse_event_time(event["event_time"])
        hit = any(start <= moment < end for start, end in windows[event["postal_code"]])
        (inside if hit else outside).append(event)
    down = [e for e in inside if e["status"] in (1, 2)]
    assert len(inside) > 100
    assert len(down) / len(inside) > 0.85
    assert all(e["signal_dbm"] is None for e in down)
    assert sum(e["status"] == 0 for e in outside) / len(outside) > 0.96


def test_invalid_share_is_deliberate_and_every_bad_record_is_caught():
    generator, records = generate(10_000, seed=5, invalid_rate=0.1)
    # Ingested right after the 100 s of event time the step clock covers.
    verdicts = [validate_payload(record, START + timedelta(minutes=2)) for record in records]
    rejected = [v for v in verdicts if v.reasons]
    reasons = Counter(reason for v in rejected for reason in v.reasons)

    assert len(rejected) == generator.invalid_count
    assert len(rejected) / len(records) == pytest.approx(0.1, abs=0.015)
    assert {
        "malformed_json",
        "not_an_object",
        "missing_operator",
        "missing_event_id",
        "out_of_range_signal_dbm",
        "out_of_range_status",
        "bad_type_status",
        "future_event_time",
        "out_of_range_position",
        "missing_longitude",
        "out_of_range_precision_m",
    } <= set(reasons)


@pytest.mark.parametrize("rate", [-0.1, 1.5])
def test_invalid_rate_outside_zero_to_one_is_refused(rate):
    with pytest.raises(ValueError, match="between 0 and 1"):
        SyntheticGenerator(invalid_rate=rate)


def test_default_clock_stamps_now():
    before = datetime.now(UTC)
    event = SyntheticGenerator(seed=1).next_event()
    after = datetime.now(UTC)
    # Late events aside (1%), event time is the wall clock.
    assert before - timedelta(minutes=2, seconds=1) <= parse_event_time(event["event_time"])
    assert parse_event_time(event["event_time"]) <= after
