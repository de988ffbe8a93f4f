"""Event contract and CSV replay mapping: properties that hold for any input (hypothesis).

``test_contract.py`` pins each rule on chosen examples; these tests throw generated
bytes, text, JSON documents and near-valid events at ``validate_payload`` and check
what must hold whatever arrives. No Spark, so no deadline is needed beyond hypothesis's
own, which is switched off: a 100,000-character string is allowed to take a moment.
"""

from __future__ import annotations

import json
import math
import string
from datetime import UTC, date, datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend.replay import make_event_id, map_csv_row, read_csv_events
from glue_job.contract import (
    BOUNDS,
    EARLIEST_EVENT_TIME,
    EVENT_ID_MAX_LEN,
    FIELD_NAMES,
    FIELDS,
    MAX_FUTURE_SKEW,
    MAX_LENGTH,
    STATUS_LABELS,
    canonical_operator,
    load_aliases,
    validate_payload,
)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DAY = date(2026, 11, 27)

# Every reason code the contract can give, family by family, built from its own field list.
RECORD_REASONS = {
    "malformed_json",
    "invalid_utf8",
    "invalid_unicode",
    "empty_record",
    "not_an_object",
    "too_deeply_nested",
    "out_of_range_position",
}
FIELD_REASONS = {f"bad_type_{f.name}" for f in FIELDS}
FIELD_REASONS |= {f"missing_{f.name}" for f in FIELDS if f.required}
FIELD_REASONS |= {"missing_latitude", "missing_longitude"}  # one given without the other
FIELD_REASONS |= {f"too_long_{f.name}" for f in FIELDS if f.kind == "string"}
FIELD_REASONS |= {f"out_of_range_{f.name}" for f in FIELDS if f.kind != "string"}
FIELD_REASONS |= {
    f"{family}_{f.name}"
    for f in FIELDS
    if f.kind == "timestamp"
    for family in ("bad_format", "future")
}
KNOWN_REASONS = RECORD_REASONS | FIELD_REASONS

# --- strategies ---------------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
offsets = st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
# Any instant a datetime can hold, in any offset, the first and last days of the calendar
# (where an offset pushes the UTC time out of range) especially, and odd text.
ends_of_time = st.datetimes(max_value=datetime(1, 1, 2)) | st.datetimes(
    min_value=datetime(9999, 12, 30)
)
any_times = (
    st.builds(
        lambda moment, zone: moment.replace(tzinfo=zone).isoformat(),
        st.datetimes() | ends_of_time,
        offsets,
    )
    | st.datetimes().map(datetime.isoformat)
    | st.text(max_size=40)
)
valid_times = st.builds(
    lambda moment, zone: moment.replace(tzinfo=UTC).astimezone(zone).isoformat(),
    st.datetimes(min_value=datetime(2000, 1, 2), max_value=NOW.replace(tzinfo=None)),
    offsets,
)
# Letters that case-fold to themselves but upper-case to an ASCII letter, or the reverse.
LOOKALIKES = {"i": "ı", "s": "ſ", "k": "\u212a"}
alias_names = st.sampled_from(sorted(load_aliases()))


@st.composite
def lookalike_aliases(draw) -> str:
    """An alias with some letters swapped for look-alikes ("movıstar" with a dotless i)."""
    name = draw(alias_names)
    return "".join(LOOKALIKES[c] if c in LOOKALIKES and draw(st.booleans()) else c for c in name)


operator_names = alias_names | lookalike_aliases()
# Names that upper-case to more characters than they have ("ß" -> "SS", "ﬃ" -> "FFI").
growing_names = st.text(alphabet="ßﬃŉ", min_size=20, max_size=64)
# Letters whose case changes map one character to one (or ß to SS): no Unicode normalisation.
NAME_ALPHABET = string.ascii_letters + string.digits + "áéíóúñçÁÉÍÓÚÑÇüÜıß&.-"
words = st.text(alphabet=NAME_ALPHABET, min_size=1, max_size=8)
spaces = st.sampled_from([" ", "  ", "\t", "\u00a0", " \n ", "\u2003"])


def bounded(name: str, integer: bool = False):
    low, high = BOUNDS[name]
    if integer:
        return st.integers(int(low), int(high))
    return st.floats(low, high) | st.integers(math.ceil(low), math.floor(high))


def text_of(name: str):
    return st.text(max_size=MAX_LENGTH[name]).filter(
        lambda s: s.strip() and len(s.strip()) <= MAX_LENGTH[name]
    )


def fits_canonical(name: str) -> bool:
    return len(canonical_operator(name)) <= MAX_LENGTH["operator"]


@st.composite
def valid_docs(draw) -> dict:
    """Events the contract must accept: every field valid or absent."""
    doc = {
        "event_id": draw(text_of("event_id")),
        "event_time": draw(valid_times),
        "operator": draw(operator_names | text_of("operator").filter(fits_canonical)),
        "status": draw(bounded("status", integer=True)),
    }
    optional = {
        "network": text_of("network"),
        "signal_dbm": bounded("signal_dbm"),
        "precision_m": bounded("precision_m"),
        "postal_code": text_of("postal_code"),
        "device_id": text_of("device_id"),
        "provider": text_of("provider"),
        "activity": text_of("activity"),
        "speed_mps": bounded("speed_mps"),
        "satellites": bounded("satellites", integer=True),
    }
    for name, values in optional.items():
        if draw(st.booleans()):
            doc[name] = draw(values)
    if draw(st.booleans()):
        lat, lon = draw(bounded("latitude")), draw(bounded("longitude"))
        if lat == 0 and lon == 0:
            lon = 2.17
        doc.update(latitude=lat, longitude=lon)
    return doc


@st.composite
def near_valid_docs(draw) -> dict:
    """A valid event with some fields dropped, nulled, or replaced by anything JSON holds."""
    doc = draw(valid_docs())
    hostile = {"event_time": any_times | json_values, "operator": growing_names | json_values}
    for name in sorted({*FIELD_NAMES, *doc}):
        choice = draw(st.sampled_from(["keep", "keep", "drop", "null", "replace"]))
        if choice == "drop":
            doc.pop(name, None)
        elif choice == "null":
            doc[name] = None
        elif choice == "replace":
            doc[name] = draw(hostile.get(name, json_values))
    return doc


def valid_docs_example() -> dict:
    return {
        "event_id": "e-1",
        "event_time": "2026-11-28T11:59:00Z",
        "operator": "Movistar",
        "status": 0,
    }


def encode(doc) -> str:
    return json.dumps(doc, allow_nan=True)


def check_verdict(verdict) -> None:
    assert (verdict.event is None) == bool(verdict.reasons), verdict
    assert set(verdict.reasons) <= KNOWN_REASONS, set(verdict.reasons) - KNOWN_REASONS
    assert len(verdict.reasons) == len(set(verdict.reasons))
    assert verdict.event_id is None or len(verdict.event_id) <= EVENT_ID_MAX_LEN


# --- validate_payload ---------------------------------------------------------------------


@FAST
@given(st.binary(max_size=300))
def test_any_bytes_get_a_verdict(payload):
    check_verdict(validate_payload(payload, NOW))


@FAST
@given(st.text(st.characters(exclude_categories=()), max_size=300))  # lone surrogates too
def test_any_text_gets_a_verdict(payload):
    check_verdict(validate_payload(payload, NOW))


@FAST
@given(json_values)
def test_any_json_value_gets_a_verdict(value):
    verdict = validate_payload(encode(value), NOW)
    check_verdict(verdict)
    if not isinstance(value, dict):
        assert verdict.reasons == ["not_an_object"]


@FAST
@given(any_times, valid_docs())
def test_any_event_time_gets_a_verdict(moment, doc):
    verdict = validate_payload(encode({**doc, "event_time": moment}), NOW)
    check_verdict(verdict)
    assert set(verdict.reasons) <= {
        "bad_format_event_time",
        "future_event_time",
        "out_of_range_event_time",
        "too_long_operator",
    }


@FAST
@given(
    st.integers(4000, 6000),
    st.sampled_from(["", "-"]),
    st.sampled_from(sorted(set(BOUNDS) - {"latitude", "longitude"})),  # those come in pairs
)
def test_a_number_of_thousands_of_digits_is_out_of_range_not_malformed(digits, sign, name):
    text = encode(valid_docs_example()).replace("}", f', "{name}": {sign}{"9" * digits}}}')
    assert validate_payload(text, NOW).reasons == [f"out_of_range_{name}"]


@FAST
@given(near_valid_docs())
def test_near_valid_events_get_a_verdict_naming_only_known_reasons(doc):
    check_verdict(validate_payload(encode(doc), NOW))


@FAST
@given(valid_docs())
def test_a_valid_event_respects_bounds_lengths_and_canonical_operators(doc):
    verdict = validate_payload(encode(doc), NOW)
    assert verdict.reasons == []
    event = verdict.event
    for name, (low, high) in BOUNDS.items():
        value = event[name]
        assert value is None or low <= value <= high, (name, value)
        assert value is None or math.isfinite(value)
    for name, limit in MAX_LENGTH.items():
        assert event[name] is None or 0 < len(event[name]) <= limit, name
    kinds = {f.name: f.kind for f in FIELDS}
    for name, kind in kinds.items():
        value = event[name]
        if value is not None and kind == "int":
            assert type(value) is int, name
        if value is not None and kind == "number":
            assert type(value) is float, name
    assert EARLIEST_EVENT_TIME <= event["event_time"] <= NOW + MAX_FUTURE_SKEW
    assert event["event_time"].utcoffset() == timedelta(0)
    assert event["operator"] == canonical_operator(event["operator"])
    assert event["status_label"] == STATUS_LABELS[event["status"]]
    assert (event["latitude"] is None) == (event["longitude"] is None)
    assert (event["latitude"], event["longitude"]) != (0, 0)
    assert verdict.event_id == event["event_id"]


@FAST
@given(
    near_valid_docs(),
    st.dictionaries(
        st.text(max_size=12).filter(lambda k: k not in FIELD_NAMES), json_values, max_size=4
    ),
)
def test_unknown_extra_fields_never_change_a_verdict(doc, extra):
    plain = validate_payload(encode(doc), NOW)
    padded = validate_payload(encode({**doc, **extra}), NOW)
    assert (padded.event, padded.reasons, padded.event_id) == (
        plain.event,
        plain.reasons,
        plain.event_id,
    )


@FAST
@given(valid_docs())
def test_a_valid_event_serialised_again_validates_to_itself(doc):
    event = validate_payload(encode(doc), NOW).event
    again = {**event, "event_time": event["event_time"].isoformat()}
    assert validate_payload(json.dumps(again), NOW).event == event


# --- operator canonicalisation ------------------------------------------------------------


@FAST
@given(growing_names, valid_docs())
def test_an_operator_upper_cased_past_its_limit_is_too_long(name, doc):
    verdict = validate_payload(encode({**doc, "operator": name}), NOW)
    if fits_canonical(name):
        assert verdict.event["operator"] == canonical_operator(name)
    else:
        assert verdict.reasons == ["too_long_operator"]


@FAST
@given(st.text(max_size=40) | operator_names | growing_names)
def test_canonical_operator_is_idempotent(name):
    once = canonical_operator(name)
    assert canonical_operator(once) == once


@st.composite
def spellings(draw) -> tuple[str, str]:
    """One operator name written twice: other letter case, other spaces around and between."""
    names = draw(st.lists(words, min_size=1, max_size=4) | operator_names.map(str.split))

    def write() -> str:
        flipped = [
            "".join(c.swapcase() if draw(st.booleans()) else c for c in word) for word in names
        ]
        gaps = [draw(spaces) for _ in range(len(flipped) - 1)]
        inner = "".join(w + g for w, g in zip(flipped, [*gaps, ""], strict=True))
        return (
            draw(st.sampled_from(["", " ", "\t "]))
            + inner
            + draw(st.sampled_from(["", "  ", "\n"]))
        )

    return write(), write()


@FAST
@given(spellings())
def test_case_and_spacing_never_split_an_operator(pair):
    first, second = pair
    assert canonical_operator(first) == canonical_operator(second)


# --- CSV replay (backend.replay) ----------------------------------------------------------


def csv_row(**cells: str) -> dict[str, str]:
    row = {
        "hour": "10:00:00",
        "operator": "movistar",
        "status": "0",
        "signal": "",
        "postal_code": "",
    }
    return {**row, **cells}


@FAST
@given(st.integers(-200, 300) | st.floats(-200, 300).map(lambda v: round(v, 2)))
def test_signal_asu_becomes_dbm_and_bogus_values_fail_the_range_check(asu):
    event = map_csv_row(csv_row(signal=str(asu)), "f.csv:2", DAY)
    if asu == 99:
        assert event["signal_dbm"] is None  # Android's "unknown"
        return
    assert event["signal_dbm"] == 2 * asu - 113
    reasons = validate_payload(json.dumps(event), NOW).reasons
    low, high = BOUNDS["signal_dbm"]
    assert ("out_of_range_signal_dbm" in reasons) == (not low <= 2 * asu - 113 <= high)


@FAST
@given(st.integers(0, 10**8), st.sampled_from(["{}", "{}.0", " {}.0 "]))
def test_postal_codes_get_their_leading_zeros_back(code, pattern):
    mapped = map_csv_row(csv_row(postal_code=pattern.format(code)), "f.csv:2", DAY)["postal_code"]
    assert mapped == str(code).zfill(6)
    assert int(mapped) == code
    assert len(mapped) == max(6, len(str(code)))


@FAST
@given(st.integers(-(10**6), -1) | st.floats(0.01, 10**6).filter(lambda v: not v.is_integer()))
def test_a_postal_code_that_is_no_code_travels_as_its_text(value):
    text = str(value)
    assert map_csv_row(csv_row(postal_code=text), "f.csv:2", DAY)["postal_code"] == text
    assert map_csv_row(csv_row(postal_code=""), "f.csv:2", DAY)["postal_code"] is None


@FAST
@given(st.text(min_size=1, max_size=200).filter(lambda s: "/" not in s), st.integers(2, 10**9))
def test_event_ids_are_stable_bounded_and_tell_lines_apart(file_name, line):
    event_id = make_event_id(file_name, line)
    assert event_id == make_event_id(file_name, line)
    assert len(event_id) <= EVENT_ID_MAX_LEN
    assert event_id != make_event_id(file_name, line + 1)
    assert event_id != make_event_id(file_name + "x", line)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 31), min_size=1, max_size=8), st.integers(0, 3))
def test_replaying_a_file_from_anywhere_gives_the_same_ids(tmp_path_factory, signals, blanks):
    lines = ["hour,operator,status,signal"] + [
        f"10:00:0{i % 10},movistar,0,{s}" for i, s in enumerate(signals)
    ]
    text = "\n".join(lines[:1] + [""] * blanks + lines[1:]) + "\n"  # blank lines are no rows
    ids = []
    for folder in ("a", "b"):
        path = tmp_path_factory.mktemp(folder) / "capture.csv"
        path.write_text(text, encoding="utf-8")
        ids.append([e["event_id"] for e in read_csv_events(path, DAY)])
    assert ids[0] == ids[1]
    assert ids[0] == [f"capture.csv:{2 + blanks + i}" for i in range(len(signals))]
