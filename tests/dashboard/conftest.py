"""Fixtures of the dashboard tests: every test starts with no cache, no TELCOPULSE_* variable
and the Kinesis endpoint on a closed port.

The page helpers (open the app on a page, read its metrics and tables) are in
``page_helpers.py``.
"""

from __future__ import annotations

import os

import pytest
from helpers import free_port


@pytest.fixture(autouse=True)
def isolated(monkeypatch):
    """No cache or TELCOPULSE_* variable leaks into (or out of) a test. Nothing listens on the
    Kinesis port, so the health page's stream probe fails fast, the same way on every machine
    (a stack already running on the default port would otherwise answer it)."""
    # Imported here: Glue's runtime (.venv-glue) loads this file too, and has no Streamlit.
    import streamlit as st

    for name in [n for n in os.environ if n.startswith("TELCOPULSE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("TELCOPULSE_EMULATOR_PORT", str(free_port()))
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()
