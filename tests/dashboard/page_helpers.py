"""Helpers of the dashboard tests: the app run headlessly with AppTest, and what it shows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from helpers import PROJECT_ROOT
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
