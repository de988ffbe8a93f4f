"""Helpers of the dashboard tests: the app run headlessly with AppTest, and what it shows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st
from helpers import PROJECT_ROOT, record_queries
from streamlit.testing.v1 import AppTest

HOME = PROJECT_ROOT / "Home.py"
TIMEOUT = 60


def open_page(monkeypatch, home: Path, page: str = "Home.py", preset: str | None = None):
    """Run ``page`` of the app over ``<home>/lake``, optionally with a time-range preset."""
    monkeypatch.setenv("TELCOPULSE_HOME", str(home))
    at = AppTest.from_file(str(HOME), default_timeout=TIMEOUT).run()
    if page != "Home.py":
        at.switch_page(page).run()
    if preset is not None:
        at.sidebar.segmented_control(key="tp_range").set_value(preset).run()
    return at


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def frame_with(at: AppTest, column: str) -> pd.DataFrame:
    frames = [df.value for df in at.dataframe if column in df.value.columns]
    assert len(frames) == 1, f"expected one table with {column!r}"
    return frames[0]


def assert_each_query_once_warm(calls: list[tuple[str, str]], names: tuple[str, ...]) -> None:
    """No query ran twice in the refresh ``calls`` recorded (``helpers.record_queries``), and
    each named query of ``backend/sql`` ran on a ``Page.warm`` thread."""
    from backend.queries import load_sql

    texts_run = [sql for sql, _ in calls]
    assert len(texts_run) == len(set(texts_run)), "a query ran twice in one refresh"
    warmed = [sql for sql, thread in calls if thread.startswith("telcopulse-warm")]
    for name in names:
        first_line = load_sql(name).splitlines()[0]
        assert any(sql.startswith(first_line) for sql in warmed), f"{name} did not run at once"


def refresh_recording_queries(monkeypatch, at: AppTest) -> list[tuple[str, str]]:
    """One refresh tick of the open page (every cached query dropped, so each runs again),
    checked to show no error, and the queries it ran (``helpers.record_queries``)."""
    calls = record_queries(monkeypatch)
    st.cache_data.clear()
    at.run()
    assert not at.error
    assert not at.exception
    return calls
