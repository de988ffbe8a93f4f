"""Hostile input through the real per-batch job: every bad record in quarantine with its reasons.

The corpus below goes through ``BatchProcessor.process_batch`` on static DataFrames
(three micro-batches: the corpus, duplicates of it, then a clean batch) into a temporary
lake, and the assertions read that lake back through ``DuckDBEngine``, as the dashboard
and the CLI do. Nothing between the raw bytes and the Parquet files is faked.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import pandas as pd
import pytest
from helpers import event, raw_rows
from reliability import PipelineScenario, record

from backend.engine import DuckDBEngine
from backend.health_data import query_window_totals
from backend.queries import Window, committed_batch
from glue_job.batch import BatchProcessor
from glue_job.contract import BOUNDS
from glue_job.lake import ParquetLake
from glue_job.schemas import RAW_SCHEMA

# Three Spark micro-batches with two 1 MB records: several seconds on two cores.
pytestmark = pytest.mark.slow

NOW = datetime.now(UTC)
PLUS_TWO = timezone(timedelta(hours=2))
VALID = ()  # expected reasons of a record that must reach silver
DUPLICATE = "duplicate"  # a valid record whose event_id arrived before: dropped, not quarantined
CLEAN_BATCH = 20


def with_literal(field: str, literal: str, event_id: str) -> str:
    """A valid event whose ``field`` holds a raw JSON literal (NaN, Infinity, huge numbers)."""
    doc = json.loads(event(event_id=event_id))
    doc[field] = "@@"
    return json.dumps(doc).replace('"@@"', literal)


def _bounds() -> list[tuple[str, bytes | str, tuple[str, ...]]]:
    """Each range bound just outside (quarantined) and exactly on it (valid)."""
    cases = []
    for field in ("signal_dbm", "precision_m", "latitude", "longitude", "status"):
        low, high = BOUNDS[field]
        step = 1 if field == "status" else 0.001
        if field == "status":
            low, high = int(low), int(high)
        for side, value, reasons in (
            ("below", low - step, (f"out_of_range_{field}",)),
            ("above", high + step, (f"out_of_range_{field}",)),
            ("at lower bound", low, VALID),
            ("at upper bound", high, VALID),
        ):
            kind = f"{field} {side}"
            cases.append((kind, event(event_id=f"bound-{field}-{side}", **{field: value}), reasons))
    return cases


def _required() -> list[tuple[str, bytes | str, tuple[str, ...]]]:
    """Missing, null and wrong type for each required field."""
    wrong = {"event_id": 7, "event_time": 1_700_000_000, "operator": ["Movistar"], "status": "0"}
    cases = []
    for field, bad in wrong.items():
        eid = {} if field == "event_id" else {"event_id": f"req-{field}"}
        cases += [
            (f"{field} missing", event(**eid, **{field: ...}), (f"missing_{field}",)),
            (f"{field} null", event(**eid, **{field: None}), (f"missing_{field}",)),
            (f"{field} wrong type", event(**eid, **{field: bad}), (f"bad_type_{field}",)),
        ]
    return cases


# (kind, raw record, expected reasons: () for valid, DUPLICATE for a dropped duplicate)
CORPUS: list[tuple[str, bytes | str, tuple[str, ...] | str]] = [
    ("not JSON", b"this is not json", ("malformed_json",)),
    ("truncated JSON", event(event_id="h-truncated")[:-15], ("malformed_json",)),
    (
        "UTF-8 byte order mark",
        b"\xef\xbb\xbf" + event(event_id="h-bom").encode(),
        ("malformed_json",),
    ),
    ("invalid UTF-8", b'{"event_id": "h-latin1", "operator": "Telef\xf3nica"}', ("invalid_utf8",)),
    ("empty record", b"", ("empty_record",)),
    ("JSON array", "[" + event(event_id="h-array") + "]", ("not_an_object",)),
    ("JSON string", '"h-string"', ("not_an_object",)),
    ("JSON number", "42", ("not_an_object",)),
    ("JSON null", "null", ("not_an_object",)),
    *_required(),
    ("status a boolean", event(event_id="h-bool", status=True), ("bad_type_status",)),
    ("status a fraction", event(event_id="h-frac", status=1.5), ("bad_type_status",)),
    ("signal as text", event(event_id="h-signal-text", signal_dbm="-80"), ("bad_type_signal_dbm",)),
    (
        "postal code a number",
        event(event_id="h-postal", postal_code=80193),
        ("bad_type_postal_code",),
    ),
    ("operator blank", event(event_id="h-blank", operator=" \t "), ("missing_operator",)),
    *_bounds(),
    ("NaN literal", with_literal("signal_dbm", "NaN", "h-nan"), ("out_of_range_signal_dbm",)),
    (
        "Infinity literal",
        with_literal("precision_m", "Infinity", "h-inf"),
        ("out_of_range_precision_m",),
    ),
    (
        "-Infinity literal",
        with_literal("longitude", "-Infinity", "h-ninf"),
        ("out_of_range_longitude",),
    ),
    (
        "integer of 5,000 digits",
        with_literal("signal_dbm", "9" * 5000, "h-digits"),
        ("out_of_range_signal_dbm",),
    ),
    (
        "event time an hour ahead",
        event(event_id="h-future", event_time=(NOW + timedelta(hours=1)).isoformat()),
        ("future_event_time",),
    ),
    (
        "event time in 1999",
        event(event_id="h-1999", event_time="1999-12-31T23:59:59Z"),
        ("out_of_range_event_time",),
    ),
    (
        "event time year 1 with an offset",
        event(event_id="h-year1", event_time="0001-01-01T00:00:00+01:00"),
        ("out_of_range_event_time",),
    ),
    (
        "event time year 9999 with an offset",
        event(event_id="h-year9999", event_time="9999-12-31T23:59:59-23:59"),
        ("future_event_time",),
    ),
    (
        "unparseable event time",
        event(event_id="h-when", event_time="yesterday at noon"),
        ("bad_format_event_time",),
    ),
    (
        "event time without offset",
        event(
            event_id="h-naive",
            event_time=(NOW - timedelta(minutes=1)).replace(tzinfo=None).isoformat(),
        ),
        ("bad_format_event_time",),
    ),
    ("huge string field", event(event_id="h-huge", network="n" * 100_000), ("too_long_network",)),
    ("event_id of 129 characters", event(event_id="x" * 129), ("too_long_event_id",)),
    ("1 MB record", event(event_id="h-1mb", device_id="d" * 1_000_000), ("too_long_device_id",)),
    ("nesting 100,000 deep", "[" * 100_000 + "]" * 100_000, ("too_deeply_nested",)),
    (
        "nested field 5,000 deep",
        event(event_id="h-deep")[:-1] + ', "extra": ' + "[" * 5000 + "]" * 5000 + "}",
        ("too_deeply_nested",),
    ),
    (
        "lone surrogate escape",
        event(event_id="h-surrogate", operator="Movi\ud800star"),
        ("invalid_unicode",),
    ),
    ("latitude without longitude", event(event_id="h-lat", longitude=...), ("missing_longitude",)),
    ("longitude without latitude", event(event_id="h-lon", latitude=...), ("missing_latitude",)),
    (
        "position (0, 0)",
        event(event_id="h-null-island", latitude=0, longitude=0.0),
        ("out_of_range_position",),
    ),
    (
        "four faults at once",
        json.dumps({"event_id": "h-many", "status": 9, "signal_dbm": 5}),
        (
            "missing_event_time",
            "missing_operator",
            "out_of_range_signal_dbm",
            "out_of_range_status",
        ),
    ),
    # Poison: records that parse, yet stress the batch code (sizes, numbers, Unicode, keys).
    (
        "operator of 10,000 characters",
        event(event_id="h-long-operator", operator="O" * 10_000),
        ("too_long_operator",),
    ),
    (
        "postal code of 10,000 digits",
        event(event_id="h-long-postal", postal_code="1" * 10_000),
        ("too_long_postal_code",),
    ),
    (
        "signal a 10,000-element array",
        event(event_id="h-array-signal", signal_dbm=[-80.0] * 10_000),
        ("bad_type_signal_dbm",),
    ),
    (
        "status a 10,000-element array",
        event(event_id="h-array-status", status=list(range(10_000))),
        ("bad_type_status",),
    ),
    (
        "operator an object",
        event(event_id="h-object-operator", operator={"name": "Movistar"}),
        ("bad_type_operator",),
    ),
    (
        "number 1e400 (beyond a double)",
        with_literal("signal_dbm", "-1e400", "h-1e400"),
        ("out_of_range_signal_dbm",),
    ),
    (
        "precision of 1.8e308",
        with_literal("precision_m", "1.8e308", "h-1.8e308"),
        ("out_of_range_precision_m",),
    ),
    (
        "latitude 1e-400 (below the smallest double)",
        with_literal("latitude", "1e-400", "h-tiny")[:-1] + ', "longitude": 0}',
        ("out_of_range_position",),
    ),
    (
        "lone low surrogate escape",
        event(event_id="h-low-surrogate", network="4G\udc00"),
        ("invalid_unicode",),
    ),
    (
        "lone surrogate in an unknown key",
        event(event_id="h-surrogate-key")[:-1] + ', "\\ud83d": 1}',
        ("invalid_unicode",),
    ),
    (
        "byte order mark before the JSON",
        "\ufeff" + event(event_id="h-bom"),
        ("malformed_json",),
    ),
    (
        "duplicated key, the last value out of range",
        event(event_id="h-dup-key-bad")[:-1] + ', "signal_dbm": 12}',
        ("out_of_range_signal_dbm",),
    ),
    (
        "duplicated key, the last value of the wrong type",
        event(event_id="h-dup-key-type")[:-1] + ', "status": "up"}',
        ("bad_type_status",),
    ),
    # Valid after all: the contract ignores what it does not know, and takes any text.
    (
        "unknown extra fields",
        event(event_id="v-extra", firmware="1.2.3", extra={"a": [1, {"b": None}]}),
        VALID,
    ),
    ("1 MB of unknown fields", event(event_id="v-padded", padding="p" * 1_000_000), VALID),
    (
        "control characters in text",
        event(event_id="v-control", network="tab\tnew\nline\u0000nul"),
        VALID,
    ),
    (
        "event time with a +02:00 offset",
        event(
            event_id="v-offset",
            event_time=(NOW - timedelta(minutes=1)).astimezone(PLUS_TWO).isoformat(),
        ),
        VALID,
    ),
    # A key sent twice: the last value counts, as in orjson, Python's json and JavaScript's
    # JSON.parse (README, "Accepted input shapes"); it is validated like any other value.
    (
        "duplicated key, the last value valid",
        event(event_id="v-dup-key", signal_dbm=12)[:-1] + ', "signal_dbm": -75.5}',
        VALID,
    ),
    (
        "10,000-element unknown array",
        event(event_id="v-big-array", neighbours=list(range(10_000))),
        VALID,
    ),
    ("duplicate id, first arrival", event(event_id="h-dup", signal_dbm=-70.0), VALID),
    ("duplicate id within the batch", event(event_id="h-dup", signal_dbm=-99.0), DUPLICATE),
]
# The second micro-batch: events that batch 0 already committed.
REPEATS: list[tuple[str, bytes | str, tuple[str, ...] | str]] = [
    ("duplicate id across batches", event(event_id="h-dup", signal_dbm=-50.0), DUPLICATE),
    ("valid event sent twice", event(event_id="v-extra"), DUPLICATE),
]
CLEAN = [event(event_id=f"clean-{i}", signal_dbm=float(-60 - i)) for i in range(CLEAN_BATCH)]
BATCHES = [CORPUS, REPEATS, [(f"clean event {i}", p, VALID) for i, p in enumerate(CLEAN)]]


@dataclass(frozen=True)
class Sent:
    """One record as it went in: its batch, its stream sequence number and what must happen."""

    kind: str
    data: bytes
    batch: int
    sequence_number: str
    expected: tuple[str, ...] | str

    @property
    def event_id(self) -> str | None:
        try:
            doc = json.loads(self.data)
        except ValueError:
            return None
        return doc.get("event_id") if isinstance(doc, dict) else None


@dataclass(frozen=True)
class CorpusLake:
    sent: list[Sent]
    stats: list[dict]
    committed: int
    bronze: pd.DataFrame
    silver: pd.DataFrame
    quarantine: pd.DataFrame
    ops: pd.DataFrame
    gold_events: int
    reconciled_on_health_page: bool


def read(engine: DuckDBEngine, sql: str, batch: int) -> pd.DataFrame:
    return engine.run(sql, [batch])


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory) -> CorpusLake:
    root = tmp_path_factory.mktemp("hostile") / "lake"
    processor = BatchProcessor(spark, ParquetLake(spark, str(root)), log=lambda _m: None)
    sent: list[Sent] = []
    stats = []
    for batch_id, cases in enumerate(BATCHES):
        payloads = [p.encode() if isinstance(p, str) else p for _, p, _ in cases]
        rows = raw_rows(payloads, start=len(sent))
        for (kind, _, expected), row in zip(cases, rows, strict=True):
            sent.append(Sent(kind, row[0], batch_id, row[3], expected))
        stats.append(processor.process_batch(spark.createDataFrame(rows, RAW_SCHEMA), batch_id))

    engine = DuckDBEngine(root)
    batch = committed_batch(engine)
    return CorpusLake(
        sent=sent,
        stats=stats,
        committed=batch,
        bronze=read(engine, "SELECT * FROM bronze WHERE commit_id <= ?", batch),
        silver=read(engine, "SELECT * FROM silver WHERE commit_id <= ?", batch),
        quarantine=read(
            engine, "SELECT * FROM quarantine WHERE ? BETWEEN commit_id AND visible_through", batch
        ),
        ops=read(
            engine,
            "SELECT * FROM ops WHERE ? BETWEEN commit_id AND visible_through ORDER BY batch_id",
            batch,
        ),
        gold_events=int(
            read(
                engine,
                "SELECT coalesce(sum(events), 0) AS n FROM gold_operator_minute "
                "WHERE ? BETWEEN commit_id AND visible_through",
                batch,
            )["n"].iloc[0]
        ),
        reconciled_on_health_page=query_window_totals(engine, batch, Window()).reconciled,
    )


def bad(lake: CorpusLake) -> list[Sent]:
    return [s for s in lake.sent if s.expected not in (VALID, DUPLICATE)]


def original_bytes(row) -> bytes:
    if row["payload_base64"] is not None and not pd.isna(row["payload_base64"]):
        return base64.b64decode(row["payload_base64"])
    return row["payload"].encode("utf-8")


def quarantine_mismatches(lake: CorpusLake) -> dict[str, tuple]:
    """kind -> (expected reasons, reasons found) wherever the two differ."""
    found = {
        seq: tuple(sorted(reasons))
        for seq, reasons in zip(
            lake.quarantine["sequence_number"], lake.quarantine["reasons"], strict=True
        )
    }
    wrong = {}
    for s in lake.sent:
        expected = tuple(sorted(s.expected)) if s.expected not in (VALID, DUPLICATE) else None
        if found.get(s.sequence_number) != expected:
            wrong[s.kind] = (expected, found.get(s.sequence_number))
    return wrong


def bronze_mismatches(lake: CorpusLake) -> list[str]:
    by_seq = {row["sequence_number"]: row for row in lake.bronze.to_dict("records")}
    return [
        s.kind
        for s in lake.sent
        if s.sequence_number not in by_seq or original_bytes(by_seq[s.sequence_number]) != s.data
    ]


def expected_silver_ids(lake: CorpusLake) -> set[str]:
    return {s.event_id for s in lake.sent if s.expected == VALID}


def test_the_corpus_covers_every_kind_the_issue_names(lake):
    kinds = [s.kind for s in bad(lake)]
    assert len(set(kinds)) == len(kinds) >= 50
    for required in (
        "not JSON",
        "truncated JSON",
        "invalid UTF-8",
        "empty record",
        "JSON array",
        "JSON number",
        *(
            f"{f} {how}"
            for f in ("event_id", "event_time", "operator", "status")
            for how in ("missing", "null", "wrong type")
        ),
        *(
            f"{f} {side}"
            for f in ("signal_dbm", "precision_m", "latitude", "longitude", "status")
            for side in ("below", "above")
        ),
        "NaN literal",
        "Infinity literal",
        "event time an hour ahead",
        "event time in 1999",
        "unparseable event time",
        "event time without offset",
        "huge string field",
        "nesting 100,000 deep",
        "1 MB record",
        "lone surrogate escape",
        "latitude without longitude",
        "position (0, 0)",
    ):
        assert required in kinds
    assert len(next(s.data for s in lake.sent if s.kind == "1 MB record")) > 1_000_000


def test_quarantine_holds_each_bad_record_with_exactly_its_reasons(lake):
    assert quarantine_mismatches(lake) == {}
    assert len(lake.quarantine) == len(bad(lake))
    rows = lake.quarantine.set_index("sequence_number")
    latin1 = next(s for s in lake.sent if s.kind == "invalid UTF-8")
    assert base64.b64decode(rows.loc[latin1.sequence_number, "payload_base64"]) == latin1.data
    assert rows.loc[latin1.sequence_number, "event_id"] is None  # nothing could be read
    long_id = next(s for s in lake.sent if s.kind == "event_id of 129 characters")
    assert rows.loc[long_id.sequence_number, "event_id"] == "x" * 128  # a hint, cut to fit
    huge = next(s for s in lake.sent if s.kind == "1 MB record")
    assert rows.loc[huge.sequence_number, "payload"].encode() == huge.data


def test_bronze_keeps_every_record_byte_for_byte(lake):
    assert len(lake.bronze) == len(lake.sent)
    assert bronze_mismatches(lake) == []
    by_seq = lake.bronze.set_index("sequence_number")
    latin1 = next(s for s in lake.sent if s.kind == "invalid UTF-8")
    assert base64.b64decode(by_seq.loc[latin1.sequence_number, "payload_base64"]) == latin1.data
    # Valid UTF-8 needs no second copy, even when it is not JSON at all.
    assert by_seq["payload_base64"].notna().sum() == 1


def test_silver_holds_exactly_the_valid_events_first_arrival_winning(lake):
    silver = lake.silver.set_index("event_id")
    assert silver.index.is_unique
    assert set(silver.index) == expected_silver_ids(lake)
    assert silver.loc["h-dup", "signal_dbm"] == -70.0
    # Values on the bounds arrive unchanged.
    for field in ("signal_dbm", "precision_m", "latitude", "longitude", "status"):
        low, high = BOUNDS[field]
        assert silver.loc[f"bound-{field}-at lower bound", field] == low
        assert silver.loc[f"bound-{field}-at upper bound", field] == high
    assert silver.loc["v-control", "network"] == "tab\tnew\nline\u0000nul"
    assert silver.loc["v-dup-key", "signal_dbm"] == -75.5  # the last of a duplicated key
    assert silver.loc["v-offset", "event_time"] == pd.Timestamp(NOW - timedelta(minutes=1)).floor(
        "us"
    )
    assert lake.gold_events == len(silver)


def test_layers_reconcile_and_duplicates_are_dropped_not_quarantined(lake):
    ops = lake.ops
    assert (
        ops["bronze_rows"] == ops["silver_rows"] + ops["quarantine_rows"] + ops["duplicates"]
    ).all()
    duplicates = [s for s in lake.sent if s.expected == DUPLICATE]
    assert (
        ops["duplicates"].tolist()
        == [sum(s.batch == b for s in duplicates) for b in range(len(BATCHES))]
        == [1, 2, 0]
    )
    assert ops["bronze_rows"].sum() == len(lake.bronze) == len(lake.sent)
    assert ops["silver_rows"].sum() == len(lake.silver)
    assert ops["quarantine_rows"].sum() == len(lake.quarantine)
    assert not set(lake.quarantine["sequence_number"]) & {s.sequence_number for s in duplicates}
    assert lake.reconciled_on_health_page


def test_the_job_goes_on_to_commit_a_clean_batch(lake):
    assert lake.committed == len(BATCHES) - 1
    clean = lake.stats[-1]
    assert (clean["records_read"], clean["silver_rows"], clean["quarantine_rows"]) == (
        CLEAN_BATCH,
        CLEAN_BATCH,
        0,
    )
    assert {f"clean-{i}" for i in range(CLEAN_BATCH)} <= set(lake.silver["event_id"])


def test_corpus_results_are_recorded(lake):
    silver_ids = lake.silver["event_id"]
    expected = expected_silver_ids(lake)
    lost = len(expected - set(silver_ids)) + max(0, len(lake.sent) - len(lake.bronze))
    lost += max(0, len(lake.silver) - lake.gold_events)
    double_counted = (len(silver_ids) - silver_ids.nunique()) + len(set(silver_ids) - expected)
    double_counted += max(0, lake.gold_events - len(lake.silver))
    by_reason = Counter(reason for reasons in lake.quarantine["reasons"] for reason in reasons)
    checks = {
        "reasons": not quarantine_mismatches(lake),
        "bronze": not bronze_mismatches(lake),
        "reconciled": lake.reconciled_on_health_page,
        "clean batch committed": lake.committed == len(BATCHES) - 1,
    }
    ok = lost == 0 and double_counted == 0 and all(checks.values())
    record(
        PipelineScenario(
            name="hostile input corpus",
            events_sent=len(lake.sent),
            events_in_silver=len(lake.silver),
            duplicates_dropped=int(lake.ops["duplicates"].sum()),
            quarantined=len(lake.quarantine),
            quarantined_by_reason=dict(by_reason),
            kills_survived=0,
            lost_events=lost,
            double_counted_events=double_counted,
            result="pass" if ok else "fail",
            notes=(
                f"{len({s.kind for s in bad(lake)})} kinds of bad record in one micro-batch, "
                "then duplicates of it, then a clean batch, through the real process_batch; "
                "each quarantined with exactly its reasons, bronze byte for byte, "
                "bronze = silver + quarantine + duplicates per batch"
            ),
        )
    )
    assert (lost, double_counted) == (0, 0)
    assert all(checks.values()), checks
