"""backend.windows: presets, custom ranges, the previous window and the bucket picker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from backend import windows
from backend.queries import Window


def test_window_between_covers_whole_minutes_in_order():
    start = datetime(2026, 3, 1, 10, 15, 42, tzinfo=UTC)
    end = datetime(2026, 3, 1, 12, 0, 5, tzinfo=UTC)
    window = windows.window_between(start, end)
    assert (window.since, window.until) == (
        datetime(2026, 3, 1, 10, 15, tzinfo=UTC),
        datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
    )
    assert windows.window_between(end, start) == window
    same = windows.window_between(start, start)
    assert same.until - same.since == timedelta(minutes=1)


def test_previous_window_has_the_same_length_just_before():
    window = windows.window_for_preset("1 h", datetime(2026, 3, 1, 12, 30, 45, tzinfo=UTC))
    before = windows.previous_window(window)
    assert before == Window(
        since=datetime(2026, 3, 1, 10, 31, tzinfo=UTC),
        until=datetime(2026, 3, 1, 11, 31, tzinfo=UTC),
    )
    assert windows.previous_window(Window()) is None


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
    assert windows.pick_bucket(first, first + span) == bucket
    assert windows.pick_bucket(None, None) == "minute"


def test_window_for_preset_covers_whole_minutes_up_to_the_current_one():
    now = datetime(2026, 3, 1, 12, 30, 45, tzinfo=UTC)
    window = windows.window_for_preset("15 min", now)
    assert window.since == datetime(2026, 3, 1, 12, 16, tzinfo=UTC)
    assert window.until == datetime(2026, 3, 1, 12, 31, tzinfo=UTC)
    day = windows.window_for_preset("24 h", now)
    assert day.until - day.since == timedelta(hours=24)
    assert windows.window_for_preset("all", now) == Window()
    # Within one minute the window does not move, so cached results keep matching.
    assert windows.window_for_preset(
        "1 h", now + timedelta(seconds=10)
    ) == windows.window_for_preset("1 h", now)


def test_window_for_unknown_preset_names_the_choices():
    with pytest.raises(ValueError, match="15 min, 1 h, 24 h, 7 d, all"):
        windows.window_for_preset("2 weeks")


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
    assert windows.pick_bucket(first, first + span, windows.UNIT_SCALE) == unit


def test_pick_trend_unit_without_data():
    assert windows.pick_bucket(None, None, windows.UNIT_SCALE) == "minute"
