"""Frame converters (query layer): engine results into plain Python and steady dtypes.

DuckDB and Athena return the same query in slightly different shapes: DuckDB gives aware
UTC timestamps and typed columns, Athena naive timestamps and, in some result sets, object
columns. Every query module converts through these, so both engines read alike.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime

import pandas as pd


def first_row(frame: pd.DataFrame) -> dict:
    """The first row as a dict ({} for an empty result)."""
    return frame.iloc[0].to_dict() if len(frame) else {}


def is_missing(value: object) -> bool:
    if value is None or value is pd.NaT or value is pd.NA:
        return True
    return isinstance(value, float) and math.isnan(value)


def as_int(value: object) -> int:
    """A count: 0 when missing."""
    return 0 if is_missing(value) else int(value)


def as_float(value: object) -> float | None:
    return None if is_missing(value) else float(value)


def as_utc(value: object) -> datetime | None:
    """An aware UTC datetime: Athena's naive timestamps are UTC too."""
    if is_missing(value):
        return None
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)
    return stamp.to_pydatetime()


def numeric(frame: pd.DataFrame, floats: Sequence[str], counts: Sequence[str]) -> pd.DataFrame:
    """``floats`` as float64, ``counts`` as int64 (missing counts are 0), in place."""
    for column in floats:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    for column in counts:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").fillna(0).astype("int64")
    return frame


def ratio(total: pd.Series, count: pd.Series) -> pd.Series:
    """Σ values / Σ readings per row, NaN where there were no readings."""
    return (total / count.where(count > 0)).astype("float64")
