"""Controls (presentation layer): time range, refresh interval and pause; KPI filters.

Streamlit forgets a widget's value when the page that drew it is left, so each
control keeps its value in a shadow session-state key and restores it on every
run: an auto-refresh or a page switch never resets what the user picked.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import streamlit as st
from streamlit_autorefresh import st_autorefresh

from backend.kpis import operator_options, postal_code_options
from backend.queries import Filters, Window
from backend.windows import DEFAULT_PRESET, TIME_RANGES, window_between

INTERVAL_CHOICES: tuple[int, ...] = (5, 10, 15, 30, 60, 120, 300, 600)
RANGE_KEY = "tp_range"
FROM_DATE_KEY = "tp_from_date"
FROM_TIME_KEY = "tp_from_time"
TO_DATE_KEY = "tp_to_date"
TO_TIME_KEY = "tp_to_time"
OPERATORS_KEY = "kpi_operators"
POSTAL_CODES_KEY = "kpi_postal_codes"
DEFAULT_CUSTOM_SPAN = timedelta(hours=24)
INTERVAL_KEY = "tp_interval"
PAUSED_KEY = "tp_paused"
_FROZEN_TICK_KEY = "tp_frozen_tick"


@dataclass(frozen=True)
class Refresh:
    """What the refresh control decided for this run.

    ``tick`` numbers the refresh interval we are in (frozen while paused); the
    committed batch and cached data are keyed on it, so they expire with the interval
    and every viewer in the same tick shares them.
    """

    interval: int
    paused: bool
    tick: int


def format_interval(seconds: int) -> str:
    return f"{seconds} s" if seconds < 60 else f"{seconds // 60} min"


def time_range_control() -> str:
    """The time range, shared by every page: a preset, or ``custom``."""
    options = list(TIME_RANGES)
    _restore(RANGE_KEY, DEFAULT_PRESET, options)
    choice = st.sidebar.segmented_control(
        "Time range",
        options,
        required=True,
        key=RANGE_KEY,
        on_change=_remember,
        args=(RANGE_KEY,),
        help="Event time, in whole one-minute buckets up to the current minute (UTC); "
        "custom picks a start and an end.",
    )
    return _keep(RANGE_KEY, choice or DEFAULT_PRESET)


def custom_range_control(now: datetime | None = None) -> Window:
    """Start and end (UTC, to the minute) of a custom range; the last 24 h at first."""
    end = (now or datetime.now(UTC)).astimezone(UTC).replace(second=0, microsecond=0)
    end += timedelta(minutes=1)
    start = end - DEFAULT_CUSTOM_SPAN
    defaults = {
        FROM_DATE_KEY: start.date(),
        FROM_TIME_KEY: start.time(),
        TO_DATE_KEY: end.date(),
        TO_TIME_KEY: end.time(),
    }
    for key, default in defaults.items():
        _restore_value(key, default)
    with st.sidebar:
        picked = {}
        for label, date_key, time_key in (
            ("From", FROM_DATE_KEY, FROM_TIME_KEY),
            ("To", TO_DATE_KEY, TO_TIME_KEY),
        ):
            day, moment = st.columns(2)
            picked[date_key] = day.date_input(
                f"{label} (UTC)",
                key=date_key,
                format="YYYY-MM-DD",
                on_change=_remember,
                args=(date_key,),
            )
            picked[time_key] = moment.time_input(
                f"{label} time",
                key=time_key,
                step=60,
                on_change=_remember,
                args=(time_key,),
                help="UTC. The range covers the start minute up to, not including, the end minute."
                if label == "To"
                else None,
            )
    values = {key: _keep(key, picked[key] or defaults[key]) for key in defaults}
    return window_between(
        datetime.combine(values[FROM_DATE_KEY], values[FROM_TIME_KEY], tzinfo=UTC),
        datetime.combine(values[TO_DATE_KEY], values[TO_TIME_KEY], tzinfo=UTC),
    )


def kpi_filters(choices: pd.DataFrame | None) -> Filters:
    """Operator and postal-code multi-selects; what they offer comes from ``choices``
    (events per operator and postal code in the window), plus whatever is already chosen."""
    if choices is None:
        choices = pd.DataFrame({"operator": [], "postal_code": [], "events": []})
    operators = _remembered(OPERATORS_KEY)
    postal_codes = _remembered(POSTAL_CODES_KEY)
    left, right = st.columns(2)
    operators = _remembered_multiselect(
        left,
        "Operators",
        operator_options(choices, operators),
        OPERATORS_KEY,
        placeholder="All operators",
        help="Only these operators in every view below; none chosen means all.",
    )
    postal_codes = _remembered_multiselect(
        right,
        "Postal codes",
        postal_code_options(choices, postal_codes),
        POSTAL_CODES_KEY,
        placeholder="All postal codes",
        accept_new_options=True,
        help="Only events from these postal codes, busiest first; type a code to add one "
        "the window does not have. (none) means events that carried no postal code.",
    )
    return Filters(
        operators=tuple(_keep(OPERATORS_KEY, list(operators))),
        postal_codes=tuple(_keep(POSTAL_CODES_KEY, list(postal_codes))),
    )


def _remembered_multiselect(
    column: Any, label: str, options: list[str], key: str, **options_kwargs: Any
) -> list[str]:
    """A multiselect under ``key`` whose choice is remembered across pages."""
    return column.multiselect(
        label, options, key=key, on_change=_remember, args=(key,), **options_kwargs
    )


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
        if not paused:  # the timer reruns the page; the tick says what it reads
            st_autorefresh(interval=int(interval) * 1000, key="tp_timer")
    interval = int(_keep(INTERVAL_KEY, interval))
    paused = bool(_keep(PAUSED_KEY, paused))
    if paused:
        tick = st.session_state.setdefault(_FROZEN_TICK_KEY, current_tick(interval))
    else:
        st.session_state.pop(_FROZEN_TICK_KEY, None)
        tick = current_tick(interval)
    return Refresh(interval=interval, paused=paused, tick=tick)


def current_tick(interval: int) -> int:
    """Which refresh interval of the wall clock we are in: cached data is keyed on it."""
    return int(time.time() // interval)


def _shadow(key: str) -> str:
    return f"_{key}"


def _remembered(key: str) -> list[Any]:
    """A multi-select's remembered choice, put back before the widget is drawn."""
    value = list(st.session_state.get(_shadow(key), []))
    st.session_state[key] = value
    return value


def _restore_value(key: str, default: Any) -> None:
    value = st.session_state.get(_shadow(key))
    st.session_state[key] = default if value is None else value


def _restore(key: str, default: Any, options: Sequence[Any]) -> None:
    value = st.session_state.get(_shadow(key), default)
    st.session_state[key] = value if value in options else default


def _remember(key: str) -> None:
    st.session_state[_shadow(key)] = st.session_state[key]


def _keep(key: str, value: Any) -> Any:
    st.session_state[_shadow(key)] = value
    return value
