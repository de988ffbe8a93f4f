"""Table column formats every page shares: counts, shares, measures and UTC times.

One place for how a quantity looks in a table, so the same column reads the same on every
page (``st.column_config``).
"""

from __future__ import annotations

import streamlit as st


def count(label: str, **options) -> st.column_config.NumberColumn:
    """A count, with the reader's thousands separators."""
    return st.column_config.NumberColumn(label, format="localized", **options)


def measure(label: str, unit: str, **options) -> st.column_config.NumberColumn:
    """A measured average to one decimal, with its unit (``dBm``, ``m``, ``ms``)."""
    return st.column_config.NumberColumn(label, format=f"%.1f {unit}", **options)


def share(label: str, **options) -> st.column_config.ProgressColumn:
    """A share between 0 and 1, drawn as a bar and read as a percentage."""
    return st.column_config.ProgressColumn(
        label, format="percent", min_value=0.0, max_value=1.0, **options
    )


def utc_time(label: str, **options) -> st.column_config.DatetimeColumn:
    """A moment to the second, in UTC as stored (say so in ``label``)."""
    return st.column_config.DatetimeColumn(label, format="YYYY-MM-DD HH:mm:ss", **options)
