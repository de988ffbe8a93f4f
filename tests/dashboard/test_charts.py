"""Chart helpers: lines break where a trend has no data instead of joining across it."""

from __future__ import annotations

import pandas as pd

from dashboard.charts import bucket_step, operator_lines, with_gaps

T0 = pd.Timestamp("2026-12-01 10:00")
MIN5 = pd.Timedelta(minutes=5)


def test_a_line_breaks_over_missing_buckets():
    rows = pd.DataFrame({"bucket": [T0, T0 + MIN5, T0 + 8 * MIN5], "v": [1.0, 2.0, 3.0]})
    x, y = with_gaps(rows, "v", MIN5)
    assert list(x) == [T0, T0 + MIN5, T0 + 2 * MIN5, T0 + 8 * MIN5]
    assert y == [1.0, 2.0, None, 3.0]


def test_contiguous_buckets_are_unchanged():
    rows = pd.DataFrame({"bucket": [T0 + MIN5, T0], "v": [2.0, 1.0]})
    x, y = with_gaps(rows, "v", MIN5)
    assert (list(x), y) == ([T0, T0 + MIN5], [1.0, 2.0])
    assert bucket_step(pd.Series([T0, T0 + 3 * MIN5, T0 + MIN5])) == MIN5
    assert bucket_step(pd.Series([T0])) is None


def test_operator_lines_break_per_operator_at_the_trend_bucket_size():
    trend = pd.DataFrame(
        {
            "bucket": [T0, T0 + MIN5, T0 + 6 * MIN5, T0, T0 + MIN5],
            "operator": ["A", "A", "A", "B", "B"],
            "avg": [1.0, 2.0, 3.0, 4.0, 5.0],
        }
    )
    figure = operator_lines(trend, "avg", "avg", "dBm")
    lines = {trace.name: list(trace.y) for trace in figure.data}
    assert lines == {"A": [1.0, 2.0, None, 3.0], "B": [4.0, 5.0]}
