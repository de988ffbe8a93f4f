"""Dashboard caches (presentation layer): settings and engine per process, one cached loader.

Every page query has one signature, ``query(engine, batch, window, *params)`` (the
``backend.kpis``, ``backend.home``, ``backend.health_data`` and ``backend.map_data``
functions), and ``load`` runs any of them through one Streamlit cache. Its key is the
query, the engine (which lake or Athena database), the committed ``batch``, the window, the
``tick`` of the user's refresh interval and the query's own parameters: a new tick means a
new entry, so data expires with the interval the user picked, while the same tick (a widget
click, a page switch, another viewer's refresh) reuses what was loaded. The batch itself
is looked up once per tick for all viewers (``snapshot_batch``). Each result carries how
long its query took when it really ran, so every page can show its query times.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import streamlit as st

from backend.engine import QueryEngine, make_engine
from backend.queries import Window, committed_batch
from backend.settings import Settings, load_settings

T = TypeVar("T")
# The longest refresh interval on offer; entries older than that are never asked for again.
MAX_INTERVAL_SECONDS = 600
_ENTRIES = 512


@dataclass(frozen=True)
class Loaded(Generic[T]):
    """A query's result, how long the query took when it ran, and when that was."""

    value: T
    seconds: float
    ran_at: datetime


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


@st.cache_data(ttl=MAX_INTERVAL_SECONDS, max_entries=_ENTRIES, show_spinner=False)
def snapshot_batch(_engine: QueryEngine, engine_key: str, tick: int) -> tuple[int, datetime]:
    """The committed batch the page runs of one refresh tick read, and when it was looked up.

    Looked up once per tick for every viewer, not once per viewer: every query result is
    keyed on the batch, so viewers who refresh within the same tick share each result
    instead of each running the query against a batch of their own. 20 viewers refreshing
    every 5 s (``make viewers``) cost the dashboard about a CPU-second per refresh when
    each looked the batch up for itself. The data is then at most one refresh interval
    older than the newest commit, which is what the interval the user picked promises.
    """
    return committed_batch(_engine), datetime.now(UTC)


def timed(fetch: Callable[..., T], *args: Any) -> Loaded[T]:
    started = time.perf_counter()
    value = fetch(*args)
    return Loaded(value, time.perf_counter() - started, datetime.now(UTC))


@st.cache_data(ttl=MAX_INTERVAL_SECONDS, max_entries=_ENTRIES, show_spinner=False)
def _load(  # noqa: PLR0917 - the cache key, spelled out
    query_name: str,
    engine_key: str,
    batch: int,
    window: Window | None,
    tick: int,
    params: tuple,
    _query: Callable[..., Any],
    _engine: QueryEngine,
) -> Loaded:
    return timed(_query, _engine, batch, window, *params)


def load(  # noqa: PLR0917 - a page query's arguments and what keys its cache entry
    query: Callable[..., T],
    engine: QueryEngine,
    engine_key: str,
    batch: int,
    window: Window | None,
    tick: int,
    *params: Any,
) -> Loaded[T]:
    """``query(engine, batch, window, *params)``, cached per refresh tick (see module doc)."""
    name = f"{query.__module__}.{query.__qualname__}"
    return _load(name, engine_key, batch, window, tick, params, query, engine)
