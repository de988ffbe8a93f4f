"""Time windows (query layer): the ranges a page can show, and the bucket a chart draws them in.

A page reads one ``queries.Window`` (a half-open range of whole minutes): a preset that
moves with the clock, or a custom range. Charts bucket what falls in it by how long the
data spans, so a chart holds a few hundred points at most whatever the range.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from backend.queries import BEGINNING, END_OF_TIME, Window

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

# Trend bucket -> (date_trunc unit, step in minutes within the hour), an allowlist the SQL
# binds as :unit and :step.
TREND_BUCKETS: dict[str, tuple[str, int]] = {
    "minute": ("minute", 1),
    "5 min": ("minute", 5),
    "hour": ("hour", 1),
    "day": ("day", 1),
}
# Scales for ``pick_bucket``: the longest data span drawn at each bucket (beyond the last, a
# day). Trend charts use every bucket; the health and quarantine charts, whose SQL buckets
# by date_trunc alone, use whole units.
TREND_SCALE: tuple[tuple[timedelta, str], ...] = (
    (timedelta(hours=3), "minute"),
    (timedelta(hours=24), "5 min"),
    (timedelta(days=14), "hour"),
)
UNIT_SCALE: tuple[tuple[timedelta, str], ...] = (
    (timedelta(hours=6), "minute"),
    (timedelta(days=14), "hour"),
)


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


def pick_bucket(
    first: datetime | None,
    last: datetime | None,
    scale: tuple[tuple[timedelta, str], ...] = TREND_SCALE,
) -> str:
    """The bucket for data spanning ``first``..``last``: the first of ``scale`` whose span
    covers it, else "day" (a minute when there is no data)."""
    if first is None or last is None:
        return "minute"
    span = last - first
    for limit, bucket in scale:
        if span <= limit:
            return bucket
    return "day"
