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
from backend.queries import (
    BEGINNING,
    END_OF_TIME,
    NO_FILTERS,
    Filters,
    Window,
    committed_batch,
    load_sql,
    run_kpi,
    sql_timestamp,
)
from glue_job.contract import BOUNDS, SIGNAL_BANDS, STATUS_LABELS, load_aliases

__all__ = [
    "BANDS",
    "CUSTOM",
    "DEFAULT_PRESET",
    "NO_FILTERS",
    "NO_POSTAL_CODE",
    "OUT_OF_SERVICE",
    "PRESETS",
    "SIGNAL_BANDS",
    "SIGNAL_RANGE_DBM",
    "STATUS_LABELS",
    "TIME_RANGES",
    "TREND_BUCKETS",
    "AlertRules",
    "Alerts",
    "Filters",
    "Freshness",
    "Headline",
    "HeadlineChange",
    "alert_span",
    "alert_windows",
    "committed_batch",
    "known_operators",
    "operator_options",
    "pick_bucket",
    "pick_trend_unit",
    "pivot_status",
    "postal_code_options",
    "previous_window",
    "query_alerts",
    "query_choices",
    "query_freshness",
    "query_headline",
    "query_headline_change",
    "query_precision",
    "query_signal",
    "query_signal_bands",
    "query_status",
    "query_trend",
    "rate_freshness",
    "top_postal_codes",
    "window_between",
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
# The time-range choice that reads its window from the user's own start and end.
CUSTOM = "custom"
TIME_RANGES: tuple[str, ...] = (*PRESETS, CUSTOM)
# How the KPI SQL names events without a postal code, in results and in filters.
NO_POSTAL_CODE = "(none)"
SIGNAL_RANGE_DBM: tuple[float, float] = BOUNDS["signal_dbm"]
BANDS: tuple[str, ...] = tuple(band for band, _ in SIGNAL_BANDS)
IN_SERVICE = STATUS_LABELS[0]
OUT_OF_SERVICE = STATUS_LABELS[1]
TREND_UNITS = ("minute", "hour", "day")
# Trend bucket -> (date_trunc unit, step in minutes within the hour), an allowlist the SQL
# binds as two parameters.
TREND_BUCKETS: dict[str, tuple[str, int]] = {
    "minute": ("minute", 1),
    "5 min": ("minute", 5),
    "hour": ("hour", 1),
    "day": ("day", 1),
}
# Longest data span drawn at each bucket size (beyond the last: one point a day).
_BUCKET_LIMITS = ((timedelta(hours=3), "minute"), (timedelta(hours=24), "5 min"))
_BUCKET_LIMITS += ((timedelta(days=14), "hour"),)
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


def window_between(start: datetime, end: datetime) -> Window:
    """A custom range as a window of whole minutes: [start minute, end minute).

    Reversed ends are swapped; a range shorter than a minute covers the start's minute.
    """
    start, end = sorted(
        moment.astimezone(UTC).replace(second=0, microsecond=0) for moment in (start, end)
    )
    return Window(since=start, until=max(end, start + timedelta(minutes=1)))


def previous_window(window: Window) -> Window | None:
    """The window of equal length just before ``window`` (``None`` for an open-ended one)."""
    if window.since <= BEGINNING or window.until >= END_OF_TIME:
        return None
    return Window(since=window.since - (window.until - window.since), until=window.since)


def pick_bucket(first: datetime | None, last: datetime | None) -> str:
    """Trend bucket (a ``TREND_BUCKETS`` key) for data spanning ``first``..``last``.

    Sized so a chart holds a few hundred points per operator at most.
    """
    if first is None or last is None:
        return "minute"
    span = last - first
    for limit, bucket in _BUCKET_LIMITS:
        if span <= limit:
            return bucket
    return "day"


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


@dataclass(frozen=True)
class HeadlineChange:
    """A window's headline and the previous window's (``None`` when the window is open-ended)."""

    current: Headline
    previous: Headline | None
    previous_window: Window | None

    def change(self, name: str) -> float | None:
        """current − previous for a ``Headline`` field; ``None`` when either side lacks it."""
        if self.previous is None or self.previous.is_empty:
            return None
        now, before = getattr(self.current, name), getattr(self.previous, name)
        if now is None or before is None:
            return None
        return now - before


def query_headline(engine: QueryEngine, window: Window, batch: int) -> Headline:
    return _headlines(engine, window, batch, window.since)["current"]


def query_headline_change(engine: QueryEngine, window: Window, batch: int) -> HeadlineChange:
    """The window's headline and the one of the equally long window before it, in one query."""
    before = previous_window(window)
    rows = _headlines(engine, window, batch, window.since if before is None else before.since)
    return HeadlineChange(
        current=rows["current"],
        previous=None if before is None else rows["previous"],
        previous_window=before,
    )


def _headlines(
    engine: QueryEngine, window: Window, batch: int, previous_since: datetime
) -> dict[str, Headline]:
    span = Window(since=previous_since, until=window.until)
    block = [sql_timestamp(window.since), batch, *span.params()]
    frame = engine.run(load_sql("headline"), [*block, *block])
    rows = {row["period"]: row for row in frame.to_dict("records")}
    return {period: _headline(rows.get(period, {})) for period in ("current", "previous")}


def _headline(row: dict) -> Headline:
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


def query_signal(
    engine: QueryEngine, window: Window, batch: int, filters: Filters = NO_FILTERS
) -> pd.DataFrame:
    """operator, avg_signal_dbm, samples: Σ signal_sum / Σ signal_count per operator.

    With a postal-code filter the sums come from the postal-code partials, which keep them.
    """
    name = "kpi_signal_postal" if filters.postal_codes else "kpi_signal"
    frame = run_kpi(engine, name, window, batch, filters)
    return _numeric(frame, ["avg_signal_dbm"], ["samples"])


def query_precision(
    engine: QueryEngine, window: Window, batch: int, filters: Filters = NO_FILTERS
) -> pd.DataFrame:
    """operator, avg_precision_m, samples: Σ precision_sum / Σ precision_count per operator.

    Gold keeps GPS precision per operator only: with a postal-code filter this is empty.
    """
    frame = run_kpi(engine, "kpi_precision", window, batch, filters)
    return _numeric(frame, ["avg_precision_m"], ["samples"])


def query_signal_bands(
    engine: QueryEngine, window: Window, batch: int, filters: Filters = NO_FILTERS
) -> pd.DataFrame:
    """operator, one reading count per band (``BANDS``, strongest first), samples.

    Gold keeps band counts per operator only: with a postal-code filter this is empty.
    """
    frame = run_kpi(engine, "kpi_signal_bands", window, batch, filters)
    return _numeric(frame, [], [*BANDS, "samples"])


def query_status(
    engine: QueryEngine, window: Window, batch: int, filters: Filters = NO_FILTERS
) -> pd.DataFrame:
    """postal_code (``None`` when unknown), status_label, events: long form, one row per pair."""
    return _numeric(run_kpi(engine, "kpi_status", window, batch, filters), [], ["events"])


def query_choices(engine: QueryEngine, window: Window, batch: int) -> pd.DataFrame:
    """operator, postal_code (``None`` when unknown), events: what the KPI filters can offer."""
    frame = engine.run(load_sql("kpi_choices"), [batch, *window.params()])
    return _numeric(frame, [], ["events"])


def operator_options(choices: pd.DataFrame, chosen: Sequence[str] = ()) -> list[str]:
    """Operators to offer: those with events in the window, plus any already chosen."""
    return sorted({*choices["operator"].dropna(), *chosen})


def postal_code_options(choices: pd.DataFrame, chosen: Sequence[str] = ()) -> list[str]:
    """Postal codes to offer, busiest first (``(none)`` for events without one), then the
    chosen codes the window does not have."""
    named = choices.assign(postal_code=choices["postal_code"].fillna(NO_POSTAL_CODE))
    totals = named.groupby("postal_code")["events"].sum().sort_index()
    busiest = totals.sort_values(ascending=False, kind="stable").index.tolist()
    return busiest + sorted(set(chosen) - set(busiest))


def pivot_status(status: pd.DataFrame) -> pd.DataFrame:
    """One row per postal code: events per status label (code order), total, and the shares
    of events in service and out of service.

    Sorted by out-of-service share, then busiest first; events without a postal code form
    the ``(none)`` row.
    """
    labels = list(STATUS_LABELS.values())
    columns = ["postal_code", *labels, "events", "in_service_share", "out_of_service_share"]
    if status.empty:
        return pd.DataFrame(columns=columns)
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
    wide["out_of_service_share"] = wide[OUT_OF_SERVICE] / wide["events"]
    wide = wide.reset_index()
    return wide.sort_values(
        ["out_of_service_share", "events", "postal_code"],
        ascending=[False, False, True],
        ignore_index=True,
    )[columns]


def top_postal_codes(status: pd.DataFrame, limit: int) -> pd.DataFrame:
    """The long status rows of the ``limit`` busiest postal codes (``(none)`` included)."""
    if status.empty:
        return status.assign(postal_code=pd.Series(dtype="object"))
    named = status.assign(postal_code=status["postal_code"].fillna(NO_POSTAL_CODE))
    totals = named.groupby("postal_code")["events"].sum()
    busiest = totals.sort_values(ascending=False, kind="stable").head(limit).index
    return named[named["postal_code"].isin(busiest)].reset_index(drop=True)


# --- trend --------------------------------------------------------------------------------


def query_trend(
    engine: QueryEngine, window: Window, batch: int, bucket: str, filters: Filters = NO_FILTERS
) -> pd.DataFrame:
    """bucket (UTC), operator, events, avg_signal_dbm, avg_precision_m and sample counts.

    ``bucket`` is a ``TREND_BUCKETS`` key. With a postal-code filter the series come from
    the postal-code partials, which keep no GPS precision (``avg_precision_m`` is NaN).
    """
    if bucket not in TREND_BUCKETS:
        raise ValueError(f"unknown trend bucket {bucket!r}: pick one of {', '.join(TREND_BUCKETS)}")
    unit, step = TREND_BUCKETS[bucket]
    name = "operator_trend_postal" if filters.postal_codes else "operator_trend"
    params = [*filters.params(), unit, step, batch, *window.params()]
    frame = engine.run(load_sql(name), params)
    frame["bucket"] = pd.to_datetime(frame["bucket"], utc=True)
    return _numeric(
        frame,
        ["avg_signal_dbm", "avg_precision_m"],
        ["events", "signal_samples", "precision_samples"],
    )


# --- alerts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertRules:
    """Home-page alert thresholds (from settings)."""

    outage_share: float  # OUT_OF_SERVICE + EMERGENCY_ONLY share of a postal code's events
    outage_window_minutes: int
    signal_drop_db: float  # fall of an operator's average signal against the previous hour
    min_events: int  # fewer events (signal readings) in a window never alert

    @classmethod
    def from_settings(cls, settings) -> AlertRules:
        return cls(
            outage_share=settings.alert_outage_share,
            outage_window_minutes=settings.alert_outage_window_minutes,
            signal_drop_db=settings.alert_signal_drop_db,
            min_events=settings.alert_min_events,
        )


SIGNAL_DROP_WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class Alerts:
    """What the alert queries found, and the windows they looked at."""

    outages: pd.DataFrame  # postal_code, events, outage_events, outage_share
    signal_drops: pd.DataFrame  # operator, previous_dbm, current_dbm, drop_db, *_samples
    outage_window: Window
    signal_window: Window  # the current hour; the previous one ends where it starts

    @property
    def count(self) -> int:
        return len(self.outages) + len(self.signal_drops)


def alert_windows(rules: AlertRules, now: datetime) -> tuple[Window, Window]:
    """(outage window, current signal hour), both whole minutes up to the current one."""
    until = now.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    outage = Window(since=until - timedelta(minutes=rules.outage_window_minutes), until=until)
    return outage, Window(since=until - SIGNAL_DROP_WINDOW, until=until)


def alert_span(rules: AlertRules, now: datetime) -> Window:
    """Everything the alert queries read at ``now``: the longer of the outage window and the
    two signal hours, ending with the current minute."""
    outage, signal = alert_windows(rules, now)
    return Window(since=min(outage.since, signal.since - SIGNAL_DROP_WINDOW), until=signal.until)


def query_alerts(engine: QueryEngine, batch: int, now: datetime, rules: AlertRules) -> Alerts:
    """Postal codes with too many out-of-service events, operators whose signal fell."""
    outage_window, signal_window = alert_windows(rules, now)
    outages = engine.run(
        load_sql("alert_outages"),
        [batch, *outage_window.params(), rules.min_events, rules.outage_share],
    )
    both_hours = Window(since=signal_window.since - SIGNAL_DROP_WINDOW, until=signal_window.until)
    drops = engine.run(
        load_sql("alert_signal_drops"),
        [
            sql_timestamp(signal_window.since),
            batch,
            *both_hours.params(),
            rules.min_events,
            rules.min_events,
            rules.signal_drop_db,
        ],
    )
    return Alerts(
        outages=_numeric(outages, ["outage_share"], ["events", "outage_events"]),
        signal_drops=_numeric(
            drops,
            ["previous_dbm", "current_dbm", "drop_db"],
            ["previous_samples", "current_samples"],
        ),
        outage_window=outage_window,
        signal_window=signal_window,
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
