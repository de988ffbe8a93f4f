"""Page set-up (presentation layer): the app's one sidebar, the snapshot, and loading data.

The entry script (``Home.py``) calls ``start_app`` once per run: it draws the shared
sidebar, picks one committed batch for the whole run (so all numbers on the page agree) and
keeps a ``Page`` that the page running under ``st.navigation`` gets from ``current_page``.
``Page.load`` runs any page query through the one cached loader (``dashboard.cache.load``)
and records how long it took, so every page can show its query times. A failed query
shows a one-line banner and, when there is one, the last good result marked stale.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import pandas as pd
import streamlit as st
from streamlit.runtime.scriptrunner import add_script_run_ctx, get_script_run_ctx

from backend.engine import QueryEngine, QueryError
from backend.home import Freshness, query_freshness
from backend.queries import Window
from backend.settings import Settings, SettingsError
from backend.windows import CUSTOM, window_for_preset
from dashboard import cache, controls, panels
from dashboard.cache import Loaded
from dashboard.controls import Refresh

T = TypeVar("T")
log = logging.getLogger("telcopulse.dashboard")
SNAPSHOT_KEY = "tp_snapshot"
_LAST_GOOD = "tp_last_good"
# This run's Page, from the entry script to the page it runs: each script run has a thread
# of its own, and the page runs inside the entry's run.
_run = threading.local()


@dataclass(frozen=True)
class Snapshot:
    """The committed batch a run reads, and when it was looked up."""

    batch: int
    taken_at: datetime
    source: str  # engine key, so a snapshot never outlives a change of lake


class Over:
    """A page query over a window of its own, for ``Page.warm``: ``Over(window, query, *params)``
    (the alerts read their own span, whatever the range the user chose)."""

    def __init__(self, window: Window, query: Callable[..., Any], *params: Any) -> None:
        self.window = window
        self.query = query
        self.params = params


@dataclass(frozen=True)
class _Kept:
    value: Any
    taken_at: datetime


@dataclass
class Page:
    settings: Settings
    engine: QueryEngine
    engine_key: str
    refresh: Refresh
    preset: str
    snapshot: Snapshot | None
    snapshot_error: str | None = None
    custom: Window | None = None  # the user's own range, when ``preset`` is ``CUSTOM``
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    # what -> how its query went this run (None: it failed): the page's query times
    timings: dict[str, Loaded | None] = field(default_factory=dict)
    _shown: set[str] = field(default_factory=set)

    @property
    def batch(self) -> int:
        return -1 if self.snapshot is None else self.snapshot.batch

    @property
    def now(self) -> datetime:
        """The moment this run reads: the snapshot's, so every number on the page agrees."""
        return self.snapshot.taken_at if self.snapshot else datetime.now(UTC)

    @property
    def window(self) -> Window:
        if self.preset == CUSTOM and self.custom is not None:
            return self.custom
        return window_for_preset(self.preset, self.now)

    @property
    def range_key(self) -> str:
        """Names the chosen range (a preset moves with time; a custom range does not)."""
        if self.preset == CUSTOM and self.custom is not None:
            return f"{CUSTOM}:{self.custom.since.isoformat()}:{self.custom.until.isoformat()}"
        return self.preset

    def require_snapshot(self) -> None:
        """Stop the page when no batch could be looked up (the banner says why)."""
        if self.snapshot_error:
            self._banner("the committed batch", self.snapshot_error)
        if self.snapshot is None:
            st.stop()
        if self.snapshot_error:
            panels.stale_note("snapshot", self.snapshot.taken_at)

    def require_data(self) -> None:
        """Stop the page with the waiting panel while nothing is committed yet."""
        self.require_snapshot()
        if self.batch < 0:
            panels.waiting_for_data(self.settings, self.refresh.interval)
            st.stop()

    def load(
        self, what: str, query: Callable[..., T], *params: Any, window: Window | None = None
    ) -> T | None:
        """``query(engine, batch, window, *params)`` through the cache, or the last good result.

        ``window`` defaults to the chosen time range. Returns ``None`` when the query failed
        and nothing was loaded before.
        """
        if window is None:
            window = self.window
            kept_key = f"{_LAST_GOOD}:{what}:{self.range_key}:{params!r}"
        else:
            kept_key = f"{_LAST_GOOD}:{what}:own window:{params!r}"
        try:
            loaded = cache.load(
                query, self.engine, self.engine_key, self.batch, window, self.refresh.tick, *params
            )
        except QueryError as exc:
            cause = str(exc)
        except Exception as exc:
            # A page must never show a traceback; the log keeps it for whoever runs the app.
            log.exception("loading %s failed", what)
            cause = f"{type(exc).__name__}: {exc}"
        else:
            self.timings[what] = loaded
            st.session_state[kept_key] = _Kept(loaded.value, datetime.now(UTC))
            return loaded.value
        self.timings[what] = None
        self._banner(what, cause)
        kept: _Kept | None = st.session_state.get(kept_key)
        if kept is None:
            return None
        panels.stale_note(what, kept.taken_at)
        return kept.value

    def warm(self, *loads: tuple | Over) -> None:
        """Run independent page queries at once into the cache that ``load`` then reads:
        DuckDB and Athena both release the GIL while a query runs, so the page waits for the
        slowest rather than for the sum. Each load is ``(query, *params)`` over the chosen
        range, or an ``Over`` for a query with a window of its own. A query that fails here
        is left for ``load`` to run again and report."""
        if len(loads) < 2:
            return
        context = get_script_run_ctx()
        chosen = self.window

        def fill(load: tuple | Over) -> None:
            add_script_run_ctx(threading.current_thread(), context)
            if not isinstance(load, Over):
                load = Over(chosen, *load)
            with contextlib.suppress(Exception):
                cache.load(
                    load.query,
                    self.engine,
                    self.engine_key,
                    self.batch,
                    load.window,
                    self.refresh.tick,
                    *load.params,
                )

        with ThreadPoolExecutor(len(loads), thread_name_prefix="telcopulse-warm") as pool:
            for done in [pool.submit(fill, load) for load in loads]:
                done.result()

    @property
    def freshness_load(self) -> tuple:
        """What ``freshness`` loads, as a ``warm`` load: the query and its thresholds."""
        settings = self.settings
        return query_freshness, (settings.freshness_amber_seconds, settings.freshness_red_seconds)

    def freshness(self) -> Freshness | None:
        query, thresholds = self.freshness_load
        found = self.load("freshness", query, thresholds)
        if found is None:
            return None
        return found.rated_at(datetime.now(UTC), *thresholds)

    def query_times(self) -> pd.DataFrame:
        """query, took_ms, loaded: one row per query of this run (a failed one is left out)."""
        rows = []
        for name, loaded in self.timings.items():
            if loaded is None:
                continue
            if loaded.ran_at >= self.started:
                when = "this run"
            else:
                when = f"cached at {loaded.ran_at.astimezone(UTC):%H:%M:%S} UTC"
            rows.append({"query": name, "took_ms": 1000 * loaded.seconds, "loaded": when})
        return pd.DataFrame(rows, columns=["query", "took_ms", "loaded"])

    def show_query_times(self) -> None:
        """The page's queries and how long each took, at the foot of every page."""
        panels.query_times(self.query_times(), self.engine.name)

    def _banner(self, what: str, cause: str) -> None:
        # One banner per cause and run: an unreachable engine fails every query alike. When
        # not even the committed batch could be looked up, the source itself is failing and
        # each query words it its own way (a missing lake names every table's files): that
        # first banner says why, and the queries after it only mark their data stale.
        if self.snapshot_error is not None and cause != self.snapshot_error:
            return
        if cause not in self._shown:
            self._shown.add(cause)
            panels.error_banner(what, cause)


def start_app() -> Page:
    """The entry script's set-up: page config, the shared sidebar and the run's snapshot.

    Stops the run on bad settings. The Page is kept for ``current_page``.
    """
    st.set_page_config(layout="wide")
    try:
        settings = cache.get_settings()
    except SettingsError as exc:
        st.error(f"{exc}. Fix the environment and reload the page.", icon=":material/error:")
        st.stop()
    key = cache.engine_key(settings)
    try:
        engine = cache.get_engine(key, settings)
    except Exception as exc:
        log.exception("creating the query engine failed")
        st.error(f"Could not open the query engine: {exc}", icon=":material/error:")
        st.stop()
    preset = controls.time_range_control()
    custom = controls.custom_range_control() if preset == CUSTOM else None
    refresh = controls.refresh_control(settings.refresh_seconds)
    snapshot, error = _take_snapshot(engine, key, refresh)
    page = Page(settings, engine, key, refresh, preset, snapshot, error, custom)
    if snapshot is not None:
        with st.sidebar:
            panels.refresh_caption(
                snapshot.taken_at, snapshot.batch, refresh.interval, refresh.paused
            )
    _run.page = page
    return page


def current_page() -> Page:
    """The Page the entry script set up for this run, handed over once. A page script run
    on its own (AppTest's ``switch_page`` runs the file without the entry) sets itself up."""
    page = getattr(_run, "page", None)
    _run.page = None
    return page if page is not None else start_app()


def _take_snapshot(
    engine: QueryEngine, key: str, refresh: Refresh
) -> tuple[Snapshot | None, str | None]:
    kept: Snapshot | None = st.session_state.get(SNAPSHOT_KEY)
    if kept is not None and kept.source != key:
        kept = None
    if refresh.paused and kept is not None:
        return kept, None
    try:
        batch, taken_at = cache.snapshot_batch(engine, key, refresh.tick)
    except QueryError as exc:
        return kept, str(exc)
    except Exception as exc:
        log.exception("looking up the committed batch failed")
        return kept, f"{type(exc).__name__}: {exc}"
    snapshot = Snapshot(batch=batch, taken_at=taken_at, source=key)
    st.session_state[SNAPSHOT_KEY] = snapshot
    return snapshot, None
