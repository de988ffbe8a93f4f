"""Map colours (presentation layer): the colour-by scales, their legend and deck.gl colours.

One scale per quantity a map layer can be coloured by; each bin is [low, high), best first.
The signal scale's bins are the contract's signal bands, so the map and the KPI bands agree.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass

from dashboard.panels import format_dbm
from glue_job.contract import SIGNAL_BANDS

_ALPHA = 220
NO_READING_COLOR = "#A5AA99"


@dataclass(frozen=True)
class Bin:
    """A legend entry: values in [low, high) get ``color``."""

    label: str
    color: str
    low: float
    high: float

    def holds(self, value: float) -> bool:
        return self.low <= value < self.high


@dataclass(frozen=True)
class ColorScale:
    name: str  # what the colour-by control shows
    title: str  # legend title, with the unit
    column: str  # the points column it colours by
    bins: tuple[Bin, ...]  # best first
    help: str

    def color_of(self, value: float | None) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return NO_READING_COLOR
        return next((b.color for b in self.bins if b.holds(value)), NO_READING_COLOR)


_BAND_COLORS = {"excellent": "#11A579", "good": "#80BA5A", "fair": "#F2B701", "poor": "#E73F74"}


def _signal_bins() -> tuple[Bin, ...]:
    """One bin per signal band of the contract, each [its floor, the floor above)."""
    bins, ceiling = [], math.inf
    for band, floor in SIGNAL_BANDS:
        if math.isinf(floor):
            label = f"{band} < {format_dbm(ceiling, 0)}"
        elif math.isinf(ceiling):
            label = f"{band} ≥ {format_dbm(floor, 0)}"
        else:
            label = f"{band} {format_dbm(floor, 0)} to {format_dbm(ceiling, 0)}"
        bins.append(Bin(label, _BAND_COLORS[band], floor, ceiling))
        ceiling = floor
    return tuple(bins)


SIGNAL_SCALE = ColorScale(
    name="Average signal",
    title="Average signal (dBm)",
    column="avg_signal_dbm",
    bins=_signal_bins(),
    help="Σ signal / Σ readings of the postal code's events, in dBm: closer to 0 is stronger. "
    "Grey: no event carried a signal reading.",
)
OUTAGE_SCALE = ColorScale(
    name="Out-of-service share",
    title="Out-of-service share (% of events)",
    column="out_of_service_share",
    bins=(
        Bin("< 1 %", "#11A579", 0.0, 0.01),
        Bin("1 – 5 %", "#F2B701", 0.01, 0.05),
        Bin("5 – 20 %", "#E68310", 0.05, 0.20),
        Bin("≥ 20 %", "#E73F74", 0.20, math.inf),
    ),
    help="Share of the postal code's events whose network status was OUT_OF_SERVICE.",
)
SCALES: dict[str, ColorScale] = {"signal": SIGNAL_SCALE, "outage": OUTAGE_SCALE}
DEFAULT_SCALE = "signal"


def legend_html(scale: ColorScale, largest_events: int) -> str:
    """The colour legend and what a point's size means (our constants only, no user text)."""
    swatch = (
        "display:inline-block;width:0.8em;height:0.8em;border-radius:50%;"
        "margin-right:0.35em;vertical-align:-0.05em;background:{}"
    )
    items = [
        f'<span style="white-space:nowrap;margin-right:1.1em">'
        f'<span style="{swatch.format(b.color)}"></span>{html.escape(b.label)}</span>'
        for b in (*scale.bins, Bin("no reading", NO_READING_COLOR, 0, 0))
        if scale is SIGNAL_SCALE or b.color != NO_READING_COLOR
    ]
    return (
        f'<div style="font-size:0.875rem;line-height:1.9">'
        f"<b>{html.escape(scale.title)}</b>&ensp;{''.join(items)}"
        f"<br><b>Size</b>&ensp;events in the window (largest point: {largest_events:,} events)"
        f"</div>"
    )


def rgba(color: str) -> list[int]:
    """``#RRGGBB`` as deck.gl's [r, g, b, a], at the map's opacity."""
    value = color.lstrip("#")
    return [int(value[i : i + 2], 16) for i in (0, 2, 4)] + [_ALPHA]
