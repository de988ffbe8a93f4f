"""The pages bench's query timer (bench/pages_bench.py): every call is filed under its query."""

from __future__ import annotations

import pytest

from backend.queries import bind, load_sql, parameter_names, query_names
from bench.pages_bench import QueryTimer, shape

LISTS = ("operators", "postal_codes")


@pytest.mark.parametrize("items", [0, 1, 3])
def test_every_query_is_known_by_its_bound_text_whatever_its_lists_hold(items):
    # bind writes a list as one placeholder per item: a KPI filtered on three operators
    # is timed as that KPI, not as "(unnamed)" (the 2026-12-07 bench lumped them so).
    timer = QueryTimer()
    for name in query_names():
        sql = load_sql(name)
        params = {
            p: [f"v{i}" for i in range(items)] if p in LISTS else 0 for p in parameter_names(sql)
        }
        assert timer.names.get(shape(bind(sql, params)[0])) == name
