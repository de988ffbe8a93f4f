"""Dashboard data (query layer): what every dashboard page shows, as DataFrames and dataclasses.

Pure functions over a ``QueryEngine``; no streamlit here, so they run the same in
tests, in the CLI and behind the UI's caches. Every query takes the committed
batch id explicitly, so one page refresh reads a single consistent snapshot even
while the stream job keeps committing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pandas as pd

from backend.engine import QueryEngine
from backend.queries import Window, committed_batch, load_sql, run_kpi
from glue_job.contract import BOUNDS, SIGNAL_BANDS, STATUS_LABELS, load_aliases

__all__ = [
    "DEFAULT_PRESET",
    "NO_POSTAL_CODE",
    "PRESETS",
    "SIGNAL_BANDS",
    "SIGNAL_RANGE_DBM",
    "STATUS_LABELS",
    "Freshness",
    "Headline",
    "committed_batch",
    "known_operators",
    "pick_trend_unit",
    "pivot_status",
    "query_freshness",
    "query_headline",
    "query_precision",
    "query_signal",
    "query_status",
    "query_trend",
    "rate_freshness",
    "top_postal_codes",
    "window_for_preset",
]

# Time-range presets offered by every page; ``None`` means everything committed.
PRESETS: dict[str, timedelta | None] = {
    "15 min": timedelta(minutes=15),
    "1 h": timedelta(hours=1),
    "24 h": timedelta(hours=24),
    "7 d": timedelta(days=7),
    "all": None,
}
DEFAULT_PRESET = "1 h"
NO_POSTAL_CODE = "(none)"
SIGNAL_RANGE_DBM: tuple[float, float] = BOUNDS["signal_dbm"]
IN_SERVICE = STATUS_LABELS[0]
TREND_UNITS = ("minute", "hour", "day")
# Longest data span drawn at each trend resolution (beyond the last: one point a day).
_TREND_LIMITS = ((timedelta(hours=6), "minute"), (timedelta(days=14), "hour"))


def window_for_preset(preset: str, now: datetime | None = None) -> Window:
    """The window a preset means at ``now``: whole one-minute buckets, the current one included.

    Rounding to the minute keeps the window (and so every cache key built from it)
    stable between refreshes within the same minute.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown time range {preset!r}: pick one of {', '.join(PRESETS)}")
    span = PRESETS[preset]
    if span is None:
        return Window()
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    until = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return Window(since=until - span, until=until)


def pick_trend_unit(first: datetime | None, last: datetime | None) -> str:
    """Bucket size for a trend chart over data spanning ``first``..``last`` (minute starts)."""
    if first is None or last is None:
        return "minute"
    span = last - first
    for limit, unit in _TREND_LIMITS:
        if span <= limit:
            return unit
    return "day"


def known_operators() -> list[str]:
    """Every canonical operator in the alias table, sorted: a stable base for chart colours."""
    return sorted(set(load_aliases().values()))


# --- headline -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Headline:
    """Window-wide KPIs; averages are ``None`` when no event in the window carried the value."""

    events: int
    avg_signal_dbm: float | None
    signal_samples: int
    avg_precision_m: float | None
    precision_samples: int
    in_service_share: float | None
    operators: int
    postal_codes: int
    first_minute: datetime | None
    last_minute: datetime | None

    @property
    def is_empty(self) -> bool:
        return self.events == 0


def query_headline(engine: QueryEngine, window: Window, batch: int) -> Headline:
    block = [batch, *window.params()]
    row = _first_row(engine.run(load_sql("headline"), [*block, *block]))
    return Headline(
        events=_int(row.get("events")),
        avg_signal_dbm=_float(row.get("avg_signal_dbm")),
        signal_samples=_int(row.get("signal_samples")),
        avg_precision_m=_float(row.get("avg_precision_m")),
        precision_samples=_int(row.get("precision_samples")),
        in_service_share=_float(row.get("in_service_share")),
        operators=_int(row.get("operators")),
        postal_codes=_int(row.get("postal_codes")),
        first_minute=_utc(row.get("first_minute")),
        last_minute=_utc(row.get("last_minute")),
    )


# --- the three core KPIs ------------------------------------------------------------------


def query_signal(engine: QueryEngine, window: Window, batch: int) -> pd.DataFrame:
    """operator, avg_signal_dbm, samples: Σ signal_sum / Σ signal_count per operator."""
    return _numeric(run_kpi(engine, "kpi_signal", window, batch), ["avg_signal_dbm"], ["samples"])


def query_precision(engine: QueryEngine, window: Window, batch: int) -> pd.DataFrame:
    """operator, avg_precision_m, samples: Σ precision_sum / Σ precision_count per operator."""
    frame = run_kpi(engine, "kpi_precision", window, batch)
    return _numeric(frame, ["avg_precision_m"], ["samples"])


def query_status(engine: QueryEngine, window: Window, batch: int) -> pd.DataFrame:
    """postal_code (``None`` when unknown), status_label, events: long form, one row per pair."""
    return _numeric(run_kpi(engine, "kpi_status", window, batch), [], ["events"])


def pivot_status(status: pd.DataFrame) -> pd.DataFrame:
    """One row per postal code: events per status label (code order), total, in-service share.

    Sorted busiest first; events without a postal code form the ``(none)`` row.
    """
    labels = list(STATUS_LABELS.values())
    if status.empty:
        return pd.DataFrame(columns=["postal_code", *labels, "events", "in_service_share"])
    named = status.assign(postal_code=status["postal_code"].fillna(NO_POSTAL_CODE))
    wide = (
        named.pivot_table(
            index="postal_code", columns="status_label", values="events", aggfunc="sum"
        )
        .reindex(columns=labels)
        .fillna(0)
        .astype("int64")
    )
    wide.columns.name = None
    wide["events"] = wide[labels].sum(axis=1)
    wide["in_service_share"] = wide[IN_SERVICE] / wide["events"]
    wide = wide.reset_index()
    return wide.sort_values(["events", "postal_code"], ascending=[False, True], ignore_index=True)


def top_postal_codes(status: pd.DataFrame, limit: int) -> pd.DataFrame:
    """The long status rows of the ``limit`` busiest postal codes (``(none)`` included)."""
    if status.empty:
        return status.assign(postal_code=pd.Series(dtype="object"))
    named = status.assign(postal_code=status["postal_code"].fillna(NO_POSTAL_CODE))
    totals = named.groupby("postal_code")["events"].sum()
    busiest = totals.sort_values(ascending=False, kind="stable").head(limit).index
    return named[named["postal_code"].isin(busiest)].reset_index(drop=True)


# --- trend --------------------------------------------------------------------------------


def query_trend(engine: QueryEngine, window: Window, batch: int, unit: str) -> pd.DataFrame:
    """bucket (UTC), operator, events, avg_signal_dbm, avg_precision_m and sample counts."""
    if unit not in TREND_UNITS:
        raise ValueError(f"unknown trend unit {unit!r}: pick one of {', '.join(TREND_UNITS)}")
    frame = engine.run(load_sql("operator_trend"), [unit, batch, *window.params()])
    frame["bucket"] = pd.to_datetime(frame["bucket"], utc=True)
    return _numeric(
        frame,
        ["avg_signal_dbm", "avg_precision_m"],
        ["events", "signal_samples", "precision_samples"],
    )


# --- freshness ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Freshness:
    """How old the newest committed data is, rated against the settings' thresholds."""

    level: str  # "green" | "amber" | "red"
    age_seconds: float | None  # since the newest batch that read records committed
    last_commit: datetime | None
    newest_event: datetime | None
    newest_arrival: datetime | None
    batches: int

    @property
    def has_data(self) -> bool:
        return self.last_commit is not None

    def rated_at(self, now: datetime, amber_seconds: float, red_seconds: float) -> Freshness:
        """The same facts with the age and level recomputed for ``now``."""
        age = None
        if self.last_commit is not None:
            age = max(0.0, (now - self.last_commit).total_seconds())
        return replace(self, age_seconds=age, level=rate_freshness(age, amber_seconds, red_seconds))


def rate_freshness(age_seconds: float | None, amber_seconds: float, red_seconds: float) -> str:
    """green below ``amber_seconds``, amber below ``red_seconds``, red after (or with no data)."""
    if age_seconds is None:
        return "red"
    if age_seconds < amber_seconds:
        return "green"
    if age_seconds < red_seconds:
        return "amber"
    return "red"


def query_freshness(
    engine: QueryEngine,
    batch: int,
    *,
    amber_seconds: float,
    red_seconds: float,
    now: datetime | None = None,
) -> Freshness:
    row = _first_row(engine.run(load_sql("freshness"), [batch]))
    facts = Freshness(
        level="red",
        age_seconds=None,
        last_commit=_utc(row.get("last_commit")),
        newest_event=_utc(row.get("newest_event")),
        newest_arrival=_utc(row.get("newest_arrival")),
        batches=_int(row.get("batches")),
    )
    return facts.rated_at(now or datetime.now(UTC), amber_seconds, red_seconds)


# --- helpers ------------------------------------------------------------------------------


def _first_row(frame: pd.DataFrame) -> dict:
    return frame.iloc[0].to_dict() if len(frame) else {}


def _missing(value: object) -> bool:
    if value is None or value is pd.NaT or value is pd.NA:
        return True
    return isinstance(value, float) and math.isnan(value)


def _int(value: object) -> int:
    return 0 if _missing(value) else int(value)


def _float(value: object) -> float | None:
    return None if _missing(value) else float(value)


def _utc(value: object) -> datetime | None:
    """Engines differ: DuckDB returns aware UTC timestamps, Athena naive ones (which are UTC)."""
    if _missing(value):
        return None
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)
    return stamp.to_pydatetime()


def _numeric(frame: pd.DataFrame, floats: Sequence[str], counts: Sequence[str]) -> pd.DataFrame:
    """Same dtypes from both engines (Athena's result sets can come back as object columns)."""
    for column in floats:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    for column in counts:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").fillna(0).astype("int64")
    return frame
