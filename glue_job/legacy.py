"""The earlier producers' record shape (stream job): input version 1, mapped to the contract.

Before TelcoPulse, producers sent each mobile-logs row as JSON in their own shape:
``timestamp`` (the row's time of day, ``HH:MM:SS``), ``operator``, ``network``,
``provider``, ``activity``, ``postal_code`` (text such as ``"250236.0"``), ``signal`` (ASU,
a float), ``precision`` and ``status``, optionally ``lat`` and ``long``. A record with a
``timestamp`` and neither ``event_id`` nor ``event_time`` is read as that shape
(``is_v1``) and mapped field by field (``from_v1``), then validated like any event:

- the event time is the latest instant, at or before the record's arrival on the stream,
  with the record's time of day (UTC); a time of day later than the arrival's belongs to
  the day before, which is also right for a record sent just before midnight that arrives
  just after it;
- the signal goes from ASU to dBm (2·ASU − 113; 99 means unknown), the postal code gets
  back the leading zero its float form lost, as in the CSV replay (``backend.replay``);
- the event id is ``v1:`` and a SHA-256 of the record's content (keys sorted, compact
  JSON), so a replay of the same records adds nothing. Two identical rows are therefore one
  event: the second counts as a duplicate, which is all that can be said of two readings
  that agree in every field, time of day included.

Values that do not convert travel as they are, so the contract names what is wrong.
"""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime, time, timedelta
from typing import Any

import orjson

# Android reports 99 when the signal strength is unknown.
UNKNOWN_ASU = 99
POSTAL_CODE_DIGITS = 6
EVENT_ID_PREFIX = "v1:"
# Fields that come across unchanged, by their contract name.
_SAME = ("operator", "network", "provider", "activity", "status")
_RENAMED = {
    "precision": "precision_m",
    "lat": "latitude",
    "long": "longitude",
    "speed": "speed_mps",
    "satellites": "satellites",
}


def is_v1(doc: dict[str, Any]) -> bool:
    """Whether a JSON object is in the earlier producers' shape."""
    return "timestamp" in doc and "event_id" not in doc and "event_time" not in doc


def asu_to_dbm(asu: float) -> float:
    """GSM/UMTS: dBm = 2·ASU − 113. Applied to every value so bogus ones fail the range check."""
    return 2 * asu - 113


def signal_dbm(asu: Any) -> Any:
    """ASU (int, float or numeric text) -> dBm; 99 -> None; anything else unchanged."""
    number = parse_number(asu)
    if not isinstance(number, int | float) or isinstance(number, bool):
        return asu
    if not math.isfinite(number):
        return asu
    return None if number == UNKNOWN_ASU else asu_to_dbm(number)


def postal_code(value: Any) -> Any:
    """A code stored as a float ("80333.0", 80333.0) -> its 6 digits ("080333"). Text that is
    not a whole non-negative number stays as it was, for quarantine to show."""
    number = parse_number(value)
    if isinstance(number, bool) or not isinstance(number, int | float):
        return value
    if not math.isfinite(number) or not float(number).is_integer() or number < 0:
        return value
    return str(int(number)).zfill(POSTAL_CODE_DIGITS)


def time_of_day(text: str) -> time | None:
    """``HH:MM:SS`` (also ``H:MM:SS`` and fractions of a second), no offset; else None."""
    text = text.strip()
    try:
        moment = time.fromisoformat(text)
    except ValueError:
        try:
            moment = datetime.strptime(text, "%H:%M:%S").time()
        except ValueError:
            return None
    return None if moment.tzinfo is not None else moment


def latest_at_or_before(moment: time, arrival: datetime) -> datetime:
    """The latest instant at or before ``arrival`` whose UTC time of day is ``moment``."""
    arrival = arrival.astimezone(UTC)
    candidate = datetime.combine(arrival.date(), moment, tzinfo=UTC)
    return candidate if candidate <= arrival else candidate - timedelta(days=1)


def event_id(doc: dict[str, Any]) -> str:
    content = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
    return EVENT_ID_PREFIX + hashlib.sha256(content).hexdigest()


def from_v1(doc: dict[str, Any], arrival: datetime) -> dict[str, Any]:
    """The contract event of a version-1 record that arrived at ``arrival``."""
    event: dict[str, Any] = {"event_id": event_id(doc)}
    stamp = doc.get("timestamp")
    moment = time_of_day(stamp) if isinstance(stamp, str) else None
    if moment is not None:
        event["event_time"] = latest_at_or_before(moment, arrival).isoformat()
    elif stamp is not None:
        event["event_time"] = stamp  # the contract names what is wrong with it
    for name in _SAME:
        if name in doc:
            event[name] = doc[name]
    if isinstance(event.get("status"), float) and event["status"].is_integer():
        event["status"] = int(event["status"])
    if "signal" in doc:
        event["signal_dbm"] = signal_dbm(doc["signal"])
    if "postal_code" in doc:
        event["postal_code"] = postal_code(doc["postal_code"])
    for old, new in _RENAMED.items():
        if old in doc:
            event[new] = parse_number(doc[old])
    if isinstance(event.get("satellites"), float) and event["satellites"].is_integer():
        event["satellites"] = int(event["satellites"])
    return event


def parse_number(value: Any) -> Any:
    """Numeric text -> int or float; numbers and anything else unchanged."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return value
    return number if math.isfinite(number) else value
