"""backend.ranges: what a range's parameters say it reads (``scope_of``)."""

from __future__ import annotations

from datetime import UTC, datetime

from backend.queries import Window
from backend.ranges import Scope, Snapshot, scope_of


def at(day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def test_a_query_without_a_window_reads_everything() -> None:
    assert scope_of({"batch": 3}) is None


def test_an_in_window_query_reads_its_window_at_the_minute_grain() -> None:
    window = Window(at(2, 10, 15), at(2, 11, 45))
    assert scope_of({"batch": 3, **window.params()}) == Scope(((at(2, 10, 15), at(2, 11, 45)),))


def test_a_rolled_range_reads_minute_edges_hour_rollups_and_day_rollups() -> None:
    snapshot = Snapshot(40, hours_until=at(5, 13))
    window = Window(at(2, 10, 15), at(5, 13, 30))
    assert scope_of({"batch": snapshot, **window.rows_params(snapshot)}) == Scope(
        minutes=((at(2, 10, 15), at(2, 11)), (at(5, 13), at(5, 13, 30))),
        hours=((at(2, 11), at(3)), (at(5), at(5, 13))),
        days=((at(3), at(5)),),
    )


def test_two_windows_of_one_query_are_both_read() -> None:
    snapshot = Snapshot(40)  # no marks: minute partials only
    now, before = Window(at(5, 12), at(5, 13)), Window(at(4, 12), at(4, 13))
    params = {**now.rows_params(snapshot), **before.rows_params(snapshot, prefix="previous_")}
    assert scope_of(params) == Scope(((at(5, 12), at(5, 13)), (at(4, 12), at(4, 13))))
