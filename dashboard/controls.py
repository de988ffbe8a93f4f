"""Sidebar controls (presentation layer): time range, refresh interval and pause.

Streamlit forgets a widget's value when the page that drew it is left, so each
control keeps its value in a shadow session-state key and restores it on every
run: an auto-refresh or a page switch never resets what the user picked.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import streamlit as st
from streamlit_autorefresh import st_autorefresh

from backend.dashboard_data import DEFAULT_PRESET, PRESETS

INTERVAL_CHOICES: tuple[int, ...] = (5, 10, 15, 30, 60, 120, 300, 600)
RANGE_KEY = "tp_range"
INTERVAL_KEY = "tp_interval"
PAUSED_KEY = "tp_paused"
_FROZEN_TICK_KEY = "tp_frozen_tick"


@dataclass(frozen=True)
class Refresh:
    """What the refresh control decided for this run.

    ``tick`` numbers the refresh interval we are in (frozen while paused); cached
    data is keyed on it, so it expires with the interval. ``count`` is the
    auto-refresh counter, which makes every timer-driven rerun look again for
    newly committed batches even when two of them land in the same tick.
    """

    interval: int
    paused: bool
    tick: int
    count: int


def format_interval(seconds: int) -> str:
    return f"{seconds} s" if seconds < 60 else f"{seconds // 60} min"


def time_range_control() -> str:
    """The time-range preset, shared by every page."""
    options = list(PRESETS)
    _restore(RANGE_KEY, DEFAULT_PRESET, options)
    choice = st.sidebar.segmented_control(
        "Time range",
        options,
        required=True,
        key=RANGE_KEY,
        on_change=_remember,
        args=(RANGE_KEY,),
        help="Event time, in whole one-minute buckets up to the current minute (UTC).",
    )
    return _keep(RANGE_KEY, choice or DEFAULT_PRESET)


def refresh_control(default_interval: int) -> Refresh:
    """Interval slider, pause toggle and the auto-refresh timer itself."""
    options = sorted({*INTERVAL_CHOICES, default_interval})
    _restore(INTERVAL_KEY, default_interval, options)
    _restore(PAUSED_KEY, False, (False, True))
    with st.sidebar:
        interval = st.select_slider(
            "Refresh every",
            options=options,
            format_func=format_interval,
            key=INTERVAL_KEY,
            on_change=_remember,
            args=(INTERVAL_KEY,),
            help="How often the page reloads and looks for newly committed data.",
        )
        paused = st.toggle(
            "Pause",
            key=PAUSED_KEY,
            on_change=_remember,
            args=(PAUSED_KEY,),
            help="Freeze the page on the current snapshot; filters still work on it.",
        )
        count = 0 if paused else st_autorefresh(interval=int(interval) * 1000, key="tp_timer")
    interval = int(_keep(INTERVAL_KEY, interval))
    paused = bool(_keep(PAUSED_KEY, paused))
    if paused:
        tick = st.session_state.setdefault(_FROZEN_TICK_KEY, int(time.time() // interval))
    else:
        st.session_state.pop(_FROZEN_TICK_KEY, None)
        tick = int(time.time() // interval)
    return Refresh(interval=interval, paused=paused, tick=tick, count=count)


def _shadow(key: str) -> str:
    return f"_{key}"


def _restore(key: str, default: Any, options: Sequence[Any]) -> None:
    value = st.session_state.get(_shadow(key), default)
    st.session_state[key] = value if value in options else default


def _remember(key: str) -> None:
    st.session_state[_shadow(key)] = st.session_state[key]


def _keep(key: str, value: Any) -> Any:
    st.session_state[_shadow(key)] = value
    return value
