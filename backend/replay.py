"""Replay sources (ingest layer): turn files into Kinesis records that follow the event contract.

``mobile-logs.csv`` rows are mapped field by field to the contract in
``glue_job.contract``; JSON Lines files are sent line by line, untouched. Neither
source filters: a value that does not convert travels as its raw text, and the
stream job decides what is valid, so bronze always holds everything that was read.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from glue_job.contract import EVENT_ID_MAX_LEN, format_event_time
from glue_job.legacy import UNKNOWN_ASU, asu_to_dbm, parse_number, postal_code, time_of_day

# Columns without which every row of a file would be quarantined: a sign of the wrong file.
REQUIRED_CSV_COLUMNS = ("hour", "operator", "status")

JsonValue = str | int | float | None


def encode_event(event: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON, strict RFC 8259 (no NaN/Infinity literals)."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode(
        "utf-8"
    )


def make_event_id(file_name: str, line_number: int) -> str:
    """Stable id from (file name, line number), so replaying a file twice adds nothing.

    Only the file's base name counts: the same file replayed from another folder
    is still the same events.
    """
    event_id = f"{file_name}:{line_number}"
    if len(event_id) <= EVENT_ID_MAX_LEN:
        return event_id
    return "sha256:" + hashlib.sha256(event_id.encode("utf-8")).hexdigest()


def map_csv_row(row: Mapping[str, str | None], event_id: str, replay_date: date) -> dict[str, Any]:
    """One mobile-logs.csv row -> one contract event (a dict in contract field order).

    Empty cells become null; a cell that does not convert is kept as its raw text,
    so the stream job quarantines it with a precise reason instead of it vanishing here.
    """
    signal = _to_number(row.get("signal"))
    if isinstance(signal, int | float):
        signal = None if signal == UNKNOWN_ASU else asu_to_dbm(signal)
    event: dict[str, Any] = {
        "event_id": event_id,
        "event_time": _to_event_time(row.get("hour"), replay_date),
        "operator": _to_text(row.get("operator")),
        "network": _to_text(row.get("network")),
        "status": _to_int(row.get("status")),
        "signal_dbm": signal,
        "precision_m": _to_number(row.get("precission")),
        "latitude": _to_number(row.get("lat")),
        "longitude": _to_number(row.get("long")),
        "postal_code": _to_postal_code(row.get("postal_code")),
        "device_id": None,  # the app does not log one
        "provider": _to_text(row.get("provider")),
        "activity": _to_text(row.get("activity")),
        "speed_mps": _to_number(row.get("speed")),
        "satellites": _to_int(row.get("satellites")),
    }
    return event


def read_csv_events(path: str | Path, replay_date: date) -> Iterator[dict[str, Any]]:
    """Every data row of a mobile-logs.csv file as a contract event, in file order.

    The event id uses the physical line a row starts on (the header is line 1), so
    blank lines and quoted newlines never shift the ids of the rows after them.
    """
    path = Path(path)
    # errors="replace": a stray non-UTF-8 byte must not stop a replay; the row still goes out.
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            return
        columns = [name.strip() for name in header]
        next_line = reader.line_num + 1
        for cells in reader:
            start_line, next_line = next_line, reader.line_num + 1
            if not cells:  # a blank line is not a row
                continue
            # Short rows get nulls for the missing cells; surplus cells have no column to go to.
            row = dict(zip(columns, cells + [""] * (len(columns) - len(cells)), strict=False))
            yield map_csv_row(row, make_event_id(path.name, start_line), replay_date)


def events_from_csv(path: str | Path, replay_date: date) -> Iterator[bytes]:
    """Kinesis records (compact JSON bytes) for every row of a mobile-logs.csv file."""
    for event in read_csv_events(path, replay_date):
        yield encode_event(event)


def read_csv_header(path: str | Path) -> list[str]:
    with Path(path).open(newline="", encoding="utf-8-sig", errors="replace") as handle:
        return [name.strip() for name in next(csv.reader(handle), [])]


def events_from_jsonl(path: str | Path) -> Iterator[bytes]:
    """One record per line, byte for byte; only truly empty lines are skipped.

    Lines that are not JSON (or not UTF-8) are sent anyway: the stream job
    quarantines them, which is what a demo of bad input wants to see.
    """
    with Path(path).open("rb") as handle:
        for line in handle:
            record = line.removesuffix(b"\n").removesuffix(b"\r")
            if record:
                yield record


def _to_text(value: str | None) -> str | None:
    return value if value else None


def _to_number(value: str | None) -> JsonValue:
    """Numeric text -> int or float; blank -> None. Other text, "nan" and "inf" among it
    (JSON has no such numbers), stays text for quarantine to show (``legacy.parse_number``)."""
    if value is None or not value.strip():
        return None
    return parse_number(value)


def _to_int(value: str | None) -> JsonValue:
    """Integers arrive as "0" or "4.0"; a fractional number stays a float so the job flags it."""
    number = _to_number(value)
    if isinstance(number, float) and number.is_integer():
        return int(number)
    return number


def _to_postal_code(value: str | None) -> str | None:
    """The file stores codes as floats ("80333.0"), losing the leading zero: restore 6 digits
    (``glue_job.legacy.postal_code``, which the earlier producers' records get too)."""
    if value is None or not value.strip():
        return None
    return postal_code(value)


def _to_event_time(hour: str | None, replay_date: date) -> str | None:
    """Time of day + replay date -> ISO-8601 UTC with 'Z'. Unparseable text is passed through."""
    if not hour:
        return None  # the job reports missing_event_time
    # None for text that is no time of day, or one with an offset (ambiguous on a bare time):
    # the raw text goes on, and the job rejects it.
    moment = time_of_day(hour)
    if moment is None:
        return hour
    return format_event_time(datetime.combine(replay_date, moment, tzinfo=UTC))
