"""Home page queries (query layer): the headline and its change, freshness, and alerts.

Page queries take ``(engine, batch, window, *params)`` like every other (``backend.kpis``).
No streamlit here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pandas as pd

from backend.engine import QueryEngine
from backend.frames import as_float, as_int, as_utc, first_row, is_missing, numeric
from backend.queries import Window, run_query, sql_timestamp
from backend.ranges import NEWEST
from backend.windows import previous_window

MINUTE = timedelta(minutes=1)


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


def query_headline(engine: QueryEngine, batch: int, window: Window) -> Headline:
    return _headlines(engine, batch, window, window.since)["current"]


def query_headline_change(engine: QueryEngine, batch: int, window: Window) -> HeadlineChange:
    """The window's headline and the one of the equally long window before it, in one query."""
    before = previous_window(window)
    rows = _headlines(engine, batch, window, window.since if before is None else before.since)
    return HeadlineChange(
        current=rows["current"],
        previous=None if before is None else rows["previous"],
        previous_window=before,
    )


def _headlines(
    engine: QueryEngine, batch: int, window: Window, previous_since: datetime
) -> dict[str, Headline]:
    previous = Window(since=previous_since, until=window.since)
    frame = run_query(
        engine,
        "headline",
        batch=batch,
        **window.rows_params(batch),
        **previous.rows_params(batch, prefix="previous_"),
    )
    rows = {row["period"]: row for row in frame.to_dict("records")}
    return {period: _headline(rows.get(period, {})) for period in ("current", "previous")}


def _headline(row: dict) -> Headline:
    return Headline(
        events=as_int(row.get("events")),
        avg_signal_dbm=as_float(row.get("avg_signal_dbm")),
        signal_samples=as_int(row.get("signal_samples")),
        avg_precision_m=as_float(row.get("avg_precision_m")),
        precision_samples=as_int(row.get("precision_samples")),
        in_service_share=as_float(row.get("in_service_share")),
        operators=as_int(row.get("operators")),
        postal_codes=as_int(row.get("postal_codes")),
        first_minute=as_utc(row.get("first_minute")),
        last_minute=as_utc(row.get("last_minute")),
    )


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


def query_alerts(engine: QueryEngine, batch: int, window: Window, rules: AlertRules) -> Alerts:
    """Postal codes with too many out-of-service events, operators whose signal fell.

    ``window`` is what ``alert_span`` gives: the alert windows end with its last minute.
    """
    outage_window, signal_window = alert_windows(rules, window.until - MINUTE)
    outages = run_query(
        engine,
        "alert_outages",
        batch=batch,
        **outage_window.params(),
        min_events=rules.min_events,
        share=rules.outage_share,
    )
    both_hours = Window(since=signal_window.since - SIGNAL_DROP_WINDOW, until=signal_window.until)
    drops = run_query(
        engine,
        "alert_signal_drops",
        current_since=sql_timestamp(signal_window.since),
        batch=batch,
        **both_hours.params(),
        min_events=rules.min_events,
        drop_db=rules.signal_drop_db,
    )
    return Alerts(
        outages=numeric(outages, ["outage_share"], ["events", "outage_events"]),
        signal_drops=numeric(
            drops,
            ["previous_dbm", "current_dbm", "drop_db"],
            ["previous_samples", "current_samples"],
        ),
        outage_window=outage_window,
        signal_window=signal_window,
    )


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


def freshness_row(engine: QueryEngine, batch: int) -> dict:
    """The running figures as of ``batch`` (freshness.sql's columns): from its commit row,
    or from every ``_ops`` row when that row cannot answer (freshness_scan.sql): its batch
    is not in the newest partition, or it predates the figures or their silver ones (a row
    that has counted batches but no silver commit: no batch wrote silver, or the column is
    missing; the scan tells)."""
    row = first_row(run_query(engine, "freshness", scope=NEWEST, batch=batch))
    batches = row.get("batches")
    if (
        as_int(row.get("batch_id")) != batch
        or is_missing(batches)
        or (as_int(batches) and is_missing(row.get("silver_last_commit")))
    ):
        row = first_row(run_query(engine, "freshness_scan", batch=batch))
    return row


def query_freshness(
    engine: QueryEngine,
    batch: int,
    window: Window | None,
    thresholds: tuple[float, float],
    now: datetime | None = None,
) -> Freshness:
    """How old the newest committed data is, rated by ``thresholds`` (amber, red seconds).

    The lake as a whole, whatever the window: it is taken only for the page-query signature.
    """
    amber_seconds, red_seconds = thresholds
    row = freshness_row(engine, batch)
    facts = Freshness(
        level="red",
        age_seconds=None,
        last_commit=as_utc(row.get("last_commit")),
        newest_event=as_utc(row.get("newest_event")),
        newest_arrival=as_utc(row.get("newest_arrival")),
        batches=as_int(row.get("batches")),
    )
    return facts.rated_at(now or datetime.now(UTC), amber_seconds, red_seconds)
