"""Dashboard caches (presentation layer): settings and engine per process, query results per tick.

Every cached query takes ``engine_key`` (which lake or Athena database), the
committed ``batch`` and the ``tick`` of the user's refresh interval. A new tick
means a new cache entry, so data expires with the interval the user picked; the
same tick (a widget click, a page switch) reuses what was loaded. The engine itself
is passed as ``_engine`` so Streamlit does not try to hash it.
"""

from __future__ import annotations

from datetime import timedelta

import streamlit as st

from backend import dashboard_data as data
from backend.engine import QueryEngine, make_engine
from backend.queries import NO_FILTERS, Filters, Window
from backend.settings import Settings, load_settings

# The longest refresh interval on offer; entries older than that are never asked for again.
MAX_INTERVAL_SECONDS = 600
_MINUTE = timedelta(minutes=1)
_TTL = MAX_INTERVAL_SECONDS
_ENTRIES = 256


@st.cache_resource(show_spinner=False)
def get_settings() -> Settings:
    return load_settings()


@st.cache_resource(show_spinner=False)
def get_engine(engine_key: str, _settings: Settings) -> QueryEngine:
    """One engine per data source (DuckDB keeps its views, Athena its connection)."""
    return make_engine(_settings)


def engine_key(settings: Settings) -> str:
    if settings.mode == "aws":
        return f"athena:{settings.region}:{settings.athena_workgroup}:{settings.athena_database}"
    return f"duckdb:{settings.lake}"


@st.cache_data(ttl=_TTL, max_entries=_ENTRIES, show_spinner=False)
def committed_batch(_engine: QueryEngine, engine_key: str, tick: tuple[int, int]) -> int:
    return data.committed_batch(_engine)


@st.cache_data(ttl=_TTL, max_entries=_ENTRIES, show_spinner=False)
def headline(
    _engine: QueryEngine, engine_key: str, batch: int, window: Window, tick: int
) -> data.Headline:
    return data.query_headline(_engine, window, batch)


@st.cache_data(ttl=_TTL, max_entries=_ENTRIES, show_spinner=False)
def headline_change(
    _engine: QueryEngine, engine_key: str, batch: int, window: Window, tick: int
) -> data.HeadlineChange:
    return data.query_headline_change(_engine, window, batch)


@st.cache_data(ttl=_TTL, max_entries=_ENTRIES, show_spinner=False)
def choices(_engine: QueryEngine, engine_key: str, batch: int, window: Window, tick: int):
    return data.query_choices(_engine, window, batch)


@st.cache_data(ttl=_TTL, max_entries=_ENTRIES, show_spinner=False)
def signal(
    _engine: QueryEngine,
    engine_key: str,
    batch: int,
    window: Window,
    tick: int,
    filters: Filters = NO_FILTERS,
):
    return data.query_signal(_engine, window, batch, filters)


@st.cache_data(ttl=_TTL, max_entries=_ENTRIES, show_spinner=False)
def precision(
    _engine: QueryEngine,
    engine_key: str,
    batch: int,
    window: Window,
    tick: int,
    filters: Filters = NO_FILTERS,
):
    return data.query_precision(_engine, window, batch, filters)


@st.cache_data(ttl=_TTL, max_entries=_ENTRIES, show_spinner=False)
def signal_bands(
    _engine: QueryEngine,
    engine_key: str,
    batch: int,
    window: Window,
    tick: int,
    filters: Filters = NO_FILTERS,
):
    return data.query_signal_bands(_engine, window, batch, filters)


@st.cache_data(ttl=_TTL, max_entries=_ENTRIES, show_spinner=False)
def status(
    _engine: QueryEngine,
    engine_key: str,
    batch: int,
    window: Window,
    tick: int,
    filters: Filters = NO_FILTERS,
):
    return data.query_status(_engine, window, batch, filters)


@st.cache_data(ttl=_TTL, max_entries=_ENTRIES, show_spinner=False)
def trend(  # noqa: PLR0917 - the loader signature Page.load calls
    _engine: QueryEngine,
    engine_key: str,
    batch: int,
    window: Window,
    tick: int,
    unit: str,
    filters: Filters = NO_FILTERS,
):
    """Per-operator series; ``unit`` is a ``dashboard_data.TREND_BUCKETS`` key."""
    return data.query_trend(_engine, window, batch, unit, filters)


@st.cache_data(ttl=_TTL, max_entries=_ENTRIES, show_spinner=False)
def alerts(
    _engine: QueryEngine,
    engine_key: str,
    batch: int,
    window: Window,
    tick: int,
    rules: data.AlertRules,
) -> data.Alerts:
    # The alert windows end with ``window``: Page.load passes the run's alert span there.
    return data.query_alerts(_engine, batch, window.until - _MINUTE, rules)


@st.cache_data(ttl=_TTL, max_entries=_ENTRIES, show_spinner=False)
def freshness(
    _engine: QueryEngine,
    engine_key: str,
    batch: int,
    window: Window,
    tick: int,
    thresholds: tuple[int, int],
) -> data.Freshness:
    # ``window`` is unused but keeps every loader's signature alike. The page re-rates the
    # age against the current time, so a cached answer never claims to be fresher than it is.
    amber, red = thresholds
    return data.query_freshness(_engine, batch, amber_seconds=amber, red_seconds=red)
