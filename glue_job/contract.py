"""Event contract (silver's gate): fields, status codes, bounds and validation.

The single source of truth for what a valid TelcoPulse event is. The producer,
the stream job and the tests all import it from here, and the Glue wheel carries it.
Validation is plain Python so that it behaves identically on Spark 3.5 (Glue) and
Spark 4 (local), and so every rule can be unit-tested without a JVM.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import h3
import orjson

from glue_job import legacy

IN_SERVICE = 0
STATUS_LABELS: dict[int, str] = {
    0: "IN_SERVICE",
    1: "OUT_OF_SERVICE",
    2: "EMERGENCY_ONLY",
    3: "POWER_OFF",
}

EVENT_ID_MAX_LEN = 128
MAX_FUTURE_SKEW = timedelta(minutes=5)
# Nothing this product measures predates smartphones; earlier times are clock garbage.
EARLIEST_EVENT_TIME = datetime(2000, 1, 1, tzinfo=UTC)

# Inclusive numeric bounds per field.
BOUNDS: dict[str, tuple[float, float]] = {
    "status": (min(STATUS_LABELS), max(STATUS_LABELS)),
    "signal_dbm": (-140.0, -30.0),
    "precision_m": (0.0, 10_000.0),
    "latitude": (-90.0, 90.0),
    "longitude": (-180.0, 180.0),
    "speed_mps": (0.0, 200.0),
    "satellites": (0.0, 128.0),
}

# Longest accepted value per string field; longer values are quarantined, not truncated.
MAX_LENGTH: dict[str, int] = {
    "event_id": EVENT_ID_MAX_LEN,
    "operator": 64,
    "network": 64,
    "postal_code": 16,
    "device_id": 128,
    "provider": 32,
    "activity": 32,
}

# Signal-quality bands (dBm): lower bound inclusive, checked top down.
SIGNAL_BANDS: tuple[tuple[str, float], ...] = (
    ("excellent", -80.0),
    ("good", -90.0),
    ("fair", -100.0),
    ("poor", -math.inf),
)

# Coverage cells: each silver event with a position gets its H3 cell (h3.latlng_to_cell) at
# each of these resolutions, finest first. Resolution 8 cells are about 1 km across (0.74 km²)
# and resolution 6 cells about 6 km (36 km², the side of a square of equal area): in the
# real capture 1,000 positions fall in 330 and 153 cells, beside 132 postal codes.
H3_RESOLUTIONS: tuple[int, ...] = (8, 6)


def h3_column(resolution: int) -> str:
    """The silver column holding an event's cell at ``resolution``."""
    return f"h3_res{resolution}"


def h3_cells(latitude: float | None, longitude: float | None) -> dict[str, str | None]:
    """An event's cell per resolution (``h3_column`` names), all None without a position."""
    placed = latitude is not None and longitude is not None
    return {
        h3_column(r): h3.latlng_to_cell(latitude, longitude, r) if placed else None
        for r in H3_RESOLUTIONS
    }


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # "string" | "number" | "int" | "timestamp"
    required: bool = False


FIELDS: tuple[Field, ...] = (
    Field("event_id", "string", required=True),
    Field("event_time", "timestamp", required=True),
    Field("operator", "string", required=True),
    Field("network", "string"),
    Field("status", "int", required=True),
    Field("signal_dbm", "number"),
    Field("precision_m", "number"),
    Field("latitude", "number"),
    Field("longitude", "number"),
    Field("postal_code", "string"),
    Field("device_id", "string"),
    Field("provider", "string"),
    Field("activity", "string"),
    Field("speed_mps", "number"),
    Field("satellites", "int"),
)
FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)

ALIASES_FILE = Path(__file__).with_name("operator_aliases.csv")


@cache
def _alias_rows(path: str | None = None) -> tuple[dict[str, str], ...]:
    with open(path or ALIASES_FILE, newline="", encoding="utf-8") as handle:
        return tuple(csv.DictReader(handle))


@cache
def load_aliases(path: str | None = None) -> dict[str, str]:
    """Alias table kept as data: normalised alias -> canonical operator name."""
    return {
        _alias_key(row["alias"]): row["operator"].strip()
        for row in _alias_rows(path)
        if row["operator"].strip()
    }


@cache
def load_banners(path: str | None = None) -> dict[str, int]:
    """What the handset shows in place of an operator when it has none, from the same table:
    normalised text -> the status that text means (its ``status`` column, a label).

    "Solo llamadas de emergencia" is the handset's "emergency calls only" banner. An event
    that carries one keeps its status, position and signal but counts under no operator
    (silver's ``operator`` is null): it leaves the per-operator KPIs and shows as
    "(no operator)" where totals need it. Its payload status 0 (IN_SERVICE) contradicts
    the banner, which is the better witness: the event then carries the banner's status
    (EMERGENCY_ONLY for "emergency calls only"); any other status is kept.
    """
    codes = {label: code for code, label in STATUS_LABELS.items()}
    return {
        _alias_key(row["alias"]): codes[row["status"].strip()]
        for row in _alias_rows(path)
        if not row["operator"].strip()
    }


def _alias_key(name: str) -> str:
    # Upper-case first: the fallback name is upper-cased, and casefold alone can miss that
    # two names are one ("movıstar" with a dotless i upper-cases to "MOVISTAR"), which would
    # make canonicalisation depend on whether a name had been canonicalised already.
    return " ".join(name.split()).upper().casefold()


def canonical_operator(name: str, aliases: dict[str, str] | None = None) -> str:
    """One name per operator: case and surrounding/inner spacing never split an operator."""
    key = _alias_key(name)
    table = load_aliases() if aliases is None else aliases
    # Unknown operators still merge across casings: the upper-cased form is deterministic.
    return table.get(key) or " ".join(name.split()).upper()


def status_label(code: int) -> str:
    return STATUS_LABELS[code]


def signal_band(dbm: float) -> str:
    for band, floor in SIGNAL_BANDS:
        if dbm >= floor:
            return band
    raise ValueError(dbm)  # pragma: no cover - the last floor is -inf


def parse_event_time(value: str) -> datetime:
    """ISO-8601 with an explicit offset ('Z' allowed) -> aware UTC datetime."""
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError("event_time needs a UTC offset")
    return parsed.astimezone(UTC)


def format_event_time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _reject_constant(name: str) -> float:
    # Python's json accepts NaN/Infinity literals; RFC 8259 does not. Keep them as
    # non-finite floats so the range check names the field they were sent in.
    return float(name.replace("-Infinity", "-inf").replace("Infinity", "inf"))


def _parse_int(digits: str) -> int | float:
    # Python refuses to read integers of more than a few thousand digits (a guard against
    # slow conversions); as a float such a number is infinite, so it fails its field's range
    # check instead of making a well-formed record look malformed.
    try:
        return int(digits)
    except ValueError:
        return float(digits)


def parse_json(text: str) -> Any:
    """JSON text -> Python values: orjson (fast, strict), else the standard library.

    What orjson refuses but the contract still reads field by field goes through
    ``json``: NaN/Infinity literals and numbers too large for a double (both then fail
    the range check of their field). Strings that are not valid Unicode (lone
    ``\\ud800`` escapes) could never be written to the lake: InvalidUnicodeError.
    A key sent twice in one object keeps its last value, in both parsers (and in
    JavaScript's ``JSON.parse``), and that value is then validated like any other.
    """
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        pass
    doc = json.loads(text, parse_constant=_reject_constant, parse_int=_parse_int)
    try:
        json.dumps(doc, ensure_ascii=False, allow_nan=True).encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidUnicodeError("a string holds a lone surrogate escape") from None
    return doc


class InvalidUnicodeError(ValueError):
    """JSON that parses, but holds text that is not Unicode (a lone ``\\ud800``)."""


@dataclass
class Verdict:
    """Outcome of validating one raw record: a silver row, or the reasons it failed."""

    event: dict[str, Any] | None
    reasons: list[str]
    event_id: str | None = None  # best effort, also for quarantined records


def validate_payload(
    payload: bytes | str | None,
    ingest_time: datetime,
    aliases: dict[str, str] | None = None,
    arrival: datetime | None = None,
) -> Verdict:
    """Validate and normalise one raw record against the contract.

    Returns every failing reason code, not just the first, so quarantine tells the
    producer's owner all that is wrong with a record in one look. A record in the earlier
    producers' shape (``glue_job.legacy``) is mapped to the contract first; its event time
    comes from its ``arrival`` on the stream (``ingest_time`` when not known).
    """
    if payload is None or len(payload) == 0:
        return Verdict(None, ["empty_record"])
    if isinstance(payload, bytes):
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            return Verdict(None, ["invalid_utf8"])
    else:
        text = payload
    try:
        doc = parse_json(text)
    except RecursionError:
        return Verdict(None, ["too_deeply_nested"])
    except InvalidUnicodeError:
        return Verdict(None, ["invalid_unicode"])
    except ValueError:
        return Verdict(None, ["malformed_json"])
    if not isinstance(doc, dict):
        return Verdict(None, ["not_an_object"])
    if legacy.is_v1(doc):
        doc = legacy.from_v1(doc, arrival or ingest_time)
    return _validate_object(doc, ingest_time, aliases)


def _validate_object(
    doc: dict[str, Any], ingest_time: datetime, aliases: dict[str, str] | None
) -> Verdict:
    reasons: list[str] = []
    out: dict[str, Any] = {}
    get = doc.get
    for name, strip, missing, check in _CHECKS:
        value = get(name)
        if strip and type(value) is str:
            value = value.strip() or None
        if value is None:
            if missing:
                reasons.append(missing)
            out[name] = None
            continue
        checked, reason = check(value, ingest_time)
        if reason:
            reasons.append(reason)
        out[name] = checked

    event_id = out["event_id"] if isinstance(out.get("event_id"), str) else None
    if event_id is None and isinstance(doc.get("event_id"), str):
        event_id = doc["event_id"][:EVENT_ID_MAX_LEN]

    lat, lon = out["latitude"], out["longitude"]
    lat_given, lon_given = doc.get("latitude") is not None, doc.get("longitude") is not None
    if lat_given != lon_given:
        reasons.append("missing_longitude" if lat_given else "missing_latitude")
    elif lat is not None and lon is not None and lat == 0 and lon == 0:
        reasons.append("out_of_range_position")

    implied_status = None
    if out["operator"] is not None:
        implied_status = load_banners().get(_alias_key(out["operator"]))
    if implied_status is not None:
        out["operator"] = None  # a handset banner, not an operator (load_banners)
    elif out["operator"] is not None:
        out["operator"] = canonical_operator(out["operator"], aliases)
        # The limit holds for what silver keeps: upper-casing can lengthen a name (ß -> SS).
        if len(out["operator"]) > MAX_LENGTH["operator"]:
            reasons.append("too_long_operator")

    if reasons:
        return Verdict(None, reasons, event_id)

    if implied_status is not None and out["status"] == IN_SERVICE:
        out["status"] = implied_status
    out["status_label"] = STATUS_LABELS[out["status"]]
    out.update(h3_cells(lat, lon))
    return Verdict(out, [], event_id)


# -- field checks ----------------------------------------------------------------------------
# One specialised function per field, built once from FIELDS, BOUNDS and MAX_LENGTH: each
# returns ``(normalised value, None)`` or ``(None, reason code)``. JSON values are exactly
# str, int, float, bool, None, list or dict, so ``type(x) is`` tests are exact here (and
# keep booleans out of numbers).

Check = Callable[[Any, datetime], tuple[Any, str | None]]


def _string_check(name: str) -> Check:
    limit, bad, too_long = MAX_LENGTH.get(name, 256), f"bad_type_{name}", f"too_long_{name}"

    def check(value: Any, _ingest: datetime) -> tuple[Any, str | None]:
        if type(value) is not str:
            return None, bad
        if len(value) > limit:
            return None, too_long
        return value, None

    return check


def _timestamp_check(name: str) -> Check:
    bad, bad_format = f"bad_type_{name}", f"bad_format_{name}"
    future, too_old = f"future_{name}", f"out_of_range_{name}"

    def check(value: Any, ingest_time: datetime) -> tuple[Any, str | None]:
        if type(value) is not str:
            return None, bad
        try:
            moment = parse_event_time(value) if len(value) <= 64 else None
        except OverflowError:
            # Year 9999 or year 1 pushed past what a datetime holds by the offset, in UTC:
            # well-formed, and as far in the future (or past) as a time can be.
            far_future = datetime.fromisoformat(value).year > EARLIEST_EVENT_TIME.year
            return None, future if far_future else too_old
        except ValueError:
            moment = None
        if moment is None:
            return None, bad_format
        if moment > ingest_time + MAX_FUTURE_SKEW:
            return None, future
        if moment < EARLIEST_EVENT_TIME:
            return None, too_old
        return moment, None

    return check


def _number_check(name: str, integer: bool) -> Check:
    low, high = BOUNDS.get(name, (-math.inf, math.inf))
    bad, out_of_range = f"bad_type_{name}", f"out_of_range_{name}"

    def check(value: Any, _ingest: datetime) -> tuple[Any, str | None]:
        kind = type(value)
        if kind is float:
            if not math.isfinite(value):
                return None, out_of_range
            if integer:
                if not value.is_integer():
                    return None, bad
                value = int(value)
        elif kind is not int:
            return None, bad
        if not low <= value <= high:  # exact for ints of any size, unlike a float cast
            return None, out_of_range
        return (value if integer else float(value)), None

    return check


def _check_for(spec: Field) -> Check:
    if spec.kind == "string":
        return _string_check(spec.name)
    if spec.kind == "timestamp":
        return _timestamp_check(spec.name)
    return _number_check(spec.name, integer=spec.kind == "int")


# (field, strip surrounding spaces?, reason when missing or None, check)
_CHECKS: tuple[tuple[str, bool, str | None, Check], ...] = tuple(
    (
        spec.name,
        spec.kind == "string",
        f"missing_{spec.name}" if spec.required else None,
        _check_for(spec),
    )
    for spec in FIELDS
)
