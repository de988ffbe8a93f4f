"""Synthetic events (ingest layer): an endless, realistic stream modelled on mobile-logs.csv.

The profile is learnt from the real CSV, so the demo looks like the data the
pipeline was built for: raw operator strings with their observed weights (case
variants included, so canonicalisation has work to do), postal codes at their real
centroids, per-operator signal distributions and the observed GPS precision spread.
On top of that come status mixes, postal-code outages and late events, plus an
optional share of deliberately bad records for quarantine demos.

Everything random flows from one ``random.Random`` and time from an injected
clock, so a seed and a fake clock make the stream exactly reproducible.
"""

from __future__ import annotations

import json
import math
import random
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from backend.replay import encode_event, read_csv_events
from glue_job.contract import BOUNDS, format_event_time

PROFILE_CSV = Path(__file__).with_name("data") / "mobile-logs.csv"

# Base status mix (share per status code) outside outages: mostly in service.
STATUS_MIX: tuple[tuple[int, float], ...] = ((0, 0.97), (1, 0.02), (2, 0.005), (3, 0.005))
# Inside an outage most devices lose service; a few still camp on the cell.
OUTAGE_STATUS_MIX: tuple[tuple[int, float], ...] = ((1, 0.80), (2, 0.15), (0, 0.05))
OUTAGE_SECONDS = (30.0, 120.0)
LATE_SHARE = 0.01
MAX_LATENESS_SECONDS = 120.0
JITTER_KM = 1.0
SIGNAL_NOISE_DB = 3.0
KM_PER_DEGREE = 111.32


@dataclass(frozen=True)
class Template:
    """One observed CSV row: a synthetic device behaves like the handset that logged it."""

    operator: str
    network: str | None
    postal_code: str | None
    latitude: float
    longitude: float
    provider: str | None
    activity: str | None
    speed_mps: float
    satellites: int | None


@dataclass(frozen=True)
class Profile:
    """Distributions learnt from a mobile-logs.csv file."""

    templates: tuple[Template, ...]
    centroids: dict[str, tuple[float, float]]  # postal code -> mean (lat, lon)
    signal_by_operator: dict[str, tuple[float, ...]]  # raw operator -> valid observed dBm
    precisions: tuple[float, ...]


@cache
def load_profile(path: str | Path = PROFILE_CSV) -> Profile:
    """Learn a profile from a mobile-logs.csv file (cached: the file is read-only input)."""
    events = list(read_csv_events(path, date(2000, 1, 1)))
    templates: list[Template] = []
    positions: dict[str, list[tuple[float, float]]] = defaultdict(list)
    signals: dict[str, list[float]] = defaultdict(list)
    precisions: list[float] = []
    low, high = BOUNDS["signal_dbm"]
    for event in events:
        operator, lat, lon = event["operator"], event["latitude"], event["longitude"]
        # Only rows a valid event could come from: an operator and a real position.
        if not operator or not _is_real(lat) or not _is_real(lon) or (lat, lon) == (0, 0):
            continue
        speed = event["speed_mps"]
        satellites = event["satellites"]
        templates.append(
            Template(
                operator=operator,
                network=event["network"],
                postal_code=event["postal_code"] if isinstance(event["postal_code"], str) else None,
                latitude=lat,
                longitude=lon,
                provider=event["provider"],
                activity=event["activity"],
                speed_mps=float(speed) if _is_real(speed) and speed >= 0 else 0.0,
                satellites=satellites if isinstance(satellites, int) and satellites >= 0 else None,
            )
        )
        if templates[-1].postal_code:
            positions[templates[-1].postal_code].append((lat, lon))
        signal = event["signal_dbm"]
        # The CSV holds a few impossible readings (ASU 50–65); they must not leak into valid data.
        if _is_real(signal) and low <= signal <= high:
            signals[operator].append(float(signal))
        precision = event["precision_m"]
        if _is_real(precision) and precision >= 0:
            precisions.append(float(precision))
    if not templates:
        raise ValueError(f"{path}: no usable rows to learn a synthetic profile from")
    centroids = {
        code: (
            sum(p[0] for p in points) / len(points),
            sum(p[1] for p in points) / len(points),
        )
        for code, points in positions.items()
    }
    return Profile(
        templates=tuple(templates),
        centroids=centroids,
        signal_by_operator={op: tuple(values) for op, values in signals.items()},
        precisions=tuple(precisions) or (10.0,),
    )


@dataclass
class Outage:
    """A postal code where most devices lost service for a while."""

    postal_code: str
    start: datetime
    end: datetime


@dataclass
class _Device:
    device_id: str
    template: Template


class SyntheticGenerator:
    """Endless synthetic records (JSON bytes); iterate it or call ``next_record``.

    ``invalid_rate`` is the share of deliberately bad records (``invalid_count``
    says how many were made). ``outage_every_s`` is the mean event-time gap between
    outage starts (``outage_log`` lists them). ``clock`` returns an aware UTC
    datetime; a ``seed`` plus an injected clock make the stream reproducible.
    """

    def __init__(
        self,
        seed: int | None = None,
        invalid_rate: float = 0.0,
        profile: Profile | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
        outage_every_s: float = 180.0,
    ) -> None:
        if not 0.0 <= invalid_rate <= 1.0:
            raise ValueError(f"invalid_rate must be between 0 and 1, got {invalid_rate}")
        if outage_every_s <= 0:
            raise ValueError(f"outage_every_s must be positive, got {outage_every_s}")
        self.invalid_rate = invalid_rate
        self.outage_every_s = outage_every_s
        self.profile = profile or load_profile()
        self.clock = clock or (lambda: datetime.now(UTC))
        self.invalid_count = 0
        self.outage_log: list[Outage] = []
        self._rng = random.Random(seed)  # noqa: S311 - simulation, not security
        # One device per observed row keeps the joint operator/place/context distribution.
        self._devices = [
            _Device(f"dev-{self._rng.getrandbits(48):012x}", template)
            for template in self.profile.templates
        ]
        self._pooled_signals = tuple(
            value for values in self.profile.signal_by_operator.values() for value in values
        ) or (-90.0,)
        self._located = [
            d for d in self._devices if d.template.postal_code in self.profile.centroids
        ]
        self._active: dict[str, Outage] = {}
        self._last_tick: datetime | None = None

    def __iter__(self) -> Iterator[bytes]:
        while True:
            yield self.next_record()

    def next_record(self) -> bytes:
        """The next record: a valid event, or (at ``invalid_rate``) a deliberately bad one."""
        event = self.next_event()
        if self.invalid_rate and self._rng.random() < self.invalid_rate:
            self.invalid_count += 1
            return self._spoil(event)
        return encode_event(event)

    def next_event(self) -> dict[str, Any]:
        """One valid contract event at the clock's current time."""
        rng = self._rng
        now = self.clock()
        self._update_outages(now)
        device = rng.choice(self._devices)
        template = device.template
        code = template.postal_code
        in_outage = code is not None and code in self._active
        status = _pick(rng, OUTAGE_STATUS_MIX if in_outage else STATUS_MIX)
        lat, lon = self.profile.centroids.get(code, (template.latitude, template.longitude))
        lat, lon = _jitter(rng, lat, lon, JITTER_KM)
        event_time = now
        if rng.random() < LATE_SHARE:
            event_time = now - timedelta(seconds=rng.uniform(1.0, MAX_LATENESS_SECONDS))
        return {
            "event_id": uuid.UUID(int=rng.getrandbits(128), version=4).hex,
            "event_time": format_event_time(event_time),
            "operator": template.operator,
            "network": template.network,
            "status": status,
            # Only a device in service reports a signal reading.
            "signal_dbm": self._signal(template.operator) if status == 0 else None,
            "precision_m": self._precision(),
            "latitude": round(lat, 5),
            "longitude": round(lon, 5),
            "postal_code": code,
            "device_id": device.device_id,
            "provider": template.provider,
            "activity": template.activity,
            "speed_mps": round(template.speed_mps * rng.uniform(0.8, 1.2), 1),
            "satellites": template.satellites,
        }

    def _update_outages(self, now: datetime) -> None:
        for code in [c for c, outage in self._active.items() if outage.end <= now]:
            del self._active[code]
        elapsed = 0.0 if self._last_tick is None else (now - self._last_tick).total_seconds()
        self._last_tick = now
        # Outage starts form a Poisson process in event time, independent of the send rate.
        if elapsed > 0 and self._located:
            chance = 1.0 - math.exp(-elapsed / self.outage_every_s)
            if self._rng.random() < chance:
                code = self._rng.choice(self._located).template.postal_code
                if code is not None and code not in self._active:
                    seconds = self._rng.uniform(*OUTAGE_SECONDS)
                    outage = Outage(code, now, now + timedelta(seconds=seconds))
                    self._active[code] = outage
                    self.outage_log.append(outage)

    def _signal(self, operator: str) -> float:
        observed = self.profile.signal_by_operator.get(operator) or self._pooled_signals
        low, high = BOUNDS["signal_dbm"]
        value = self._rng.choice(observed) + self._rng.gauss(0.0, SIGNAL_NOISE_DB)
        return float(min(high, max(low, round(value))))

    def _precision(self) -> float:
        base = self._rng.choice(self.profile.precisions)
        low, high = BOUNDS["precision_m"]
        return min(high, max(low, round(base * self._rng.lognormvariate(0.0, 0.2), 1)))

    def _spoil(self, event: dict[str, Any]) -> bytes:
        """Break a valid event in one of the ways real producers do."""
        kind = self._rng.choice(SPOILERS)
        bad = dict(event)
        if kind == "truncated_json":
            data = encode_event(event)
            return data[: len(data) // 2]
        if kind == "not_an_object":
            return json.dumps([event["event_id"], event["operator"]]).encode("utf-8")
        if kind == "missing_operator":
            del bad["operator"]
        elif kind == "blank_operator":
            bad["operator"] = "   "
        elif kind == "missing_event_id":
            del bad["event_id"]
        elif kind == "signal_out_of_range":
            bad["signal_dbm"] = 2 * 65 - 113  # what the CSV's bogus ASU 65 converts to
        elif kind == "unknown_status":
            bad["status"] = 7
        elif kind == "status_as_text":
            bad["status"] = "IN_SERVICE"
        elif kind == "future_event_time":
            bad["event_time"] = format_event_time(self.clock() + timedelta(days=1))
        elif kind == "null_island":
            bad["latitude"], bad["longitude"] = 0.0, 0.0
        elif kind == "latitude_only":
            del bad["longitude"]
        elif kind == "negative_precision":
            bad["precision_m"] = -5.0
        return encode_event(bad)


SPOILERS: tuple[str, ...] = (
    "truncated_json",
    "not_an_object",
    "missing_operator",
    "blank_operator",
    "missing_event_id",
    "signal_out_of_range",
    "unknown_status",
    "status_as_text",
    "future_event_time",
    "null_island",
    "latitude_only",
    "negative_precision",
)


def _pick(rng: random.Random, mix: tuple[tuple[int, float], ...]) -> int:
    roll = rng.random()
    for value, share in mix:
        roll -= share
        if roll < 0:
            return value
    return mix[0][0]


def _jitter(rng: random.Random, lat: float, lon: float, km: float) -> tuple[float, float]:
    """Gaussian scatter of about ``km`` around a point (longitude degrees shrink with latitude)."""
    dlat = rng.gauss(0.0, km) / KM_PER_DEGREE
    dlon = rng.gauss(0.0, km) / (KM_PER_DEGREE * max(0.01, math.cos(math.radians(lat))))
    return max(-90.0, min(90.0, lat + dlat)), (lon + dlon + 180.0) % 360.0 - 180.0


def _is_real(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
