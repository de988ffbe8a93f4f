"""Pipeline health data (query layer): layer freshness, batches, quarantine and the stream.

What the Pipeline Health page shows, as DataFrames and dataclasses. It reads ``_ops``
(one row per committed batch) and ``quarantine`` only, never bronze or silver, and
page query takes ``(engine, batch, window, *params)``, like ``backend.kpis``. Windows
select batches by their start time, which is also the ``ingest_time`` of every record
they wrote, so ops and quarantine counts cover the very same batches.

No streamlit here: every query runs the same in tests and the CLI. The stream probe lives
with the other Kinesis code (``backend.kinesis``).

Why one module of about 460 lines: it is everything the Pipeline Health page decides, from
the two tables it reads (freshness, reconciliation, batch trend, quarantine reasons and
samples), next to the domain rules that interpret them, so the page itself stays drawing only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from backend.engine import QueryEngine
from backend.frames import as_float, as_int, as_utc, first_row, numeric
from backend.home import freshness_row, rate_freshness
from backend.queries import Window, load_sql, run_query
from backend.windows import UNIT_SCALE, pick_bucket

LAYERS: tuple[str, ...] = ("bronze", "silver", "gold")
# How many quarantined records the samples query returns (its LIMIT, read from the SQL), and
# the stretch at the end of a window it looks in first (``_newest_samples``).
SAMPLE_LIMIT = int(re.search(r"\bLIMIT (\d+)", load_sql("health_quarantine_samples"))[1])
SAMPLE_RECENT = timedelta(days=1)
# Up to this many batches in a window are drawn one point each; more are bucketed by time.
MAX_BATCH_POINTS = 2000
TREND_COLUMNS: tuple[str, ...] = (
    "time",
    "first_batch_id",
    "last_batch_id",
    "batches",
    "records",
    "records_per_batch",
    "input_rate",
    "duplicates",
    "quarantine_rows",
    "mismatched_batches",
    "duration_seconds",
    "max_duration_seconds",
    "source_lag_seconds",
    "max_source_lag_seconds",
    "timed_records",
    "timed_seconds",
)
SAMPLE_COLUMNS: tuple[str, ...] = (
    "ingest_time",
    "batch_id",
    "shard_id",
    "sequence_number",
    "event_id",
    "reasons",
    "encoding",
    "payload",
    "payload_chars",
    "truncated",
)


# --- freshness per layer ------------------------------------------------------------------


@dataclass(frozen=True)
class LayerFreshness:
    """How recently a layer was written, and the newest event and arrival it holds.

    ``level`` rates the age of the last write (the same thresholds as the Home badge).
    """

    layer: str
    last_write: datetime | None
    newest_event: datetime | None
    newest_arrival: datetime | None
    write_age_seconds: float | None = None
    event_age_seconds: float | None = None
    level: str = "red"

    @property
    def has_data(self) -> bool:
        return self.last_write is not None

    def rated_at(self, now: datetime, amber_seconds: float, red_seconds: float) -> LayerFreshness:
        """The same facts with ages and level recomputed for ``now``."""
        write_age = _age(now, self.last_write)
        return replace(
            self,
            write_age_seconds=write_age,
            event_age_seconds=_age(now, self.newest_event),
            level=rate_freshness(write_age, amber_seconds, red_seconds),
        )


def query_layer_freshness(
    engine: QueryEngine,
    batch: int,
    window: Window | None,
    thresholds: tuple[float, float],
    now: datetime | None = None,
) -> list[LayerFreshness]:
    """One entry per layer (bronze, silver, gold), rated at ``now`` by ``thresholds``
    (amber, red seconds). The whole lake, whatever the window.

    From the running figures of the committed batch's row (``backend.home.freshness_row``):
    bronze holds every record a batch read, so its newest write and arrival are those of
    every batch that read records; gold is refined from every silver row, so it was written
    whenever silver was; and a batch's newest event is its newest silver row's, so all three
    layers share it."""
    amber_seconds, red_seconds = thresholds
    row = freshness_row(engine, batch)
    figures = {
        "bronze": (row.get("last_commit"), row.get("newest_arrival")),
        "silver": (row.get("silver_last_commit"), row.get("silver_newest_arrival")),
    }
    figures["gold"] = figures["silver"]
    moment = now or datetime.now(UTC)
    return [
        LayerFreshness(
            layer=layer,
            last_write=as_utc(figures[layer][0]),
            newest_event=as_utc(row.get("newest_event")),
            newest_arrival=as_utc(figures[layer][1]),
        ).rated_at(moment, amber_seconds, red_seconds)
        for layer in LAYERS
    ]


def _age(now: datetime, moment: datetime | None) -> float | None:
    return None if moment is None else max(0.0, (now - moment).total_seconds())


# --- window totals and reconciliation -----------------------------------------------------


@dataclass(frozen=True)
class WindowTotals:
    """Sums over the committed batches that started in a window."""

    batches: int
    records: int
    bronze_rows: int
    silver_rows: int
    quarantine_rows: int
    duplicates: int
    mismatched_batches: int  # batches whose own counts do not reconcile
    quarantine_table_rows: int  # records the quarantine table holds for the same batches
    first_batch_start: datetime | None
    last_batch_start: datetime | None
    busy_seconds: float  # Σ batch durations
    max_duration_seconds: float | None
    max_source_lag_seconds: float | None

    @property
    def is_empty(self) -> bool:
        return self.batches == 0

    @property
    def accounted(self) -> int:
        """silver + quarantine + duplicates: where every bronze record must have gone."""
        return self.silver_rows + self.quarantine_rows + self.duplicates

    @property
    def unaccounted(self) -> int:
        return self.bronze_rows - self.accounted

    @property
    def reconciled(self) -> bool:
        """bronze = silver + quarantine + duplicates, in total and in every batch, and the
        quarantine table holds exactly the records ``_ops`` says were quarantined."""
        return (
            self.unaccounted == 0
            and self.mismatched_batches == 0
            and self.quarantine_table_rows == self.quarantine_rows
        )


def query_window_totals(engine: QueryEngine, batch: int, window: Window) -> WindowTotals:
    """Sums over the batches that started in ``window``: whole hours and days from
    ``_ops``'s rollups when ``batch`` is a ``Snapshot`` that has them."""
    parts = window.rows_params(_ops_snapshot(batch))
    row = first_row(run_query(engine, "health_totals", batch=batch, **parts))
    return WindowTotals(
        batches=as_int(row.get("batches")),
        records=as_int(row.get("records")),
        bronze_rows=as_int(row.get("bronze_rows")),
        silver_rows=as_int(row.get("silver_rows")),
        quarantine_rows=as_int(row.get("quarantine_rows")),
        duplicates=as_int(row.get("duplicates")),
        mismatched_batches=as_int(row.get("mismatched_batches")),
        quarantine_table_rows=as_int(row.get("quarantine_table_rows")),
        first_batch_start=as_utc(row.get("first_batch_start")),
        last_batch_start=as_utc(row.get("last_batch_start")),
        busy_seconds=as_float(row.get("busy_seconds")) or 0.0,
        max_duration_seconds=as_float(row.get("max_duration_seconds")),
        max_source_lag_seconds=as_float(row.get("max_source_lag_seconds")),
    )


def reconciliation_equation(totals: WindowTotals) -> str:
    return (
        f"bronze {totals.bronze_rows:,} = silver {totals.silver_rows:,} + quarantine "
        f"{totals.quarantine_rows:,} + duplicates {totals.duplicates:,}"
    )


def reconciliation_problems(totals: WindowTotals) -> list[str]:
    """Why a window does not reconcile, one phrase per failed check ([] when it does)."""
    problems = []
    if totals.unaccounted:
        problems.append(
            f"bronze {totals.bronze_rows:,} ≠ {totals.accounted:,} "
            f"(silver {totals.silver_rows:,} + quarantine {totals.quarantine_rows:,} + "
            f"duplicates {totals.duplicates:,}), {totals.unaccounted:+,} records"
        )
    if totals.mismatched_batches:
        problems.append(
            f"{totals.mismatched_batches:,} of {totals.batches:,} batches do not add up"
        )
    if totals.quarantine_table_rows != totals.quarantine_rows:
        problems.append(
            f"the quarantine table holds {totals.quarantine_table_rows:,} records where "
            f"_ops counts {totals.quarantine_rows:,}"
        )
    return problems


# --- batches over time --------------------------------------------------------------------


def pick_resolution(totals: WindowTotals) -> str:
    """``"batch"`` (one point per batch) while that stays drawable, else a time bucket."""
    if totals.batches <= MAX_BATCH_POINTS:
        return "batch"
    return time_unit(totals)


def time_unit(totals: WindowTotals) -> str:
    """The bucket unit for the window's batches over time (minute, hour or day)."""
    return pick_bucket(totals.first_batch_start, totals.last_batch_start, UNIT_SCALE)


def query_batch_trend(
    engine: QueryEngine, batch: int, window: Window, resolution: str
) -> pd.DataFrame:
    """Batches over time, one row per batch or per bucket, always with ``TREND_COLUMNS``.

    ``time`` is the batch (or bucket) start in UTC. ``input_rate`` is records per second
    of arrival: records over the time since the previous batch started (``NaN`` for the
    first batch of the window; in buckets, whose whole hours may come from ``_ops``'s
    rollups, the time since the previous batch of the same clock hour, so an hour's first
    batch is left out of the rate). Duration and lag columns are averages per bucket, with
    ``max_*`` the worst batch; per batch both are the batch's own value.
    """
    if resolution == "batch":
        span = window.params()
        return _per_batch(run_query(engine, "health_batches", batch=batch, **span))
    if resolution not in ("minute", "hour", "day"):
        raise ValueError(f"unknown resolution {resolution!r}: batch, minute, hour or day")
    parts = window.rows_params(_ops_snapshot(batch), resolution)
    frame = run_query(engine, "health_batch_buckets", batch=batch, unit=resolution, **parts)
    frame = numeric(
        frame,
        [
            "timed_seconds",
            "duration_seconds",
            "max_duration_seconds",
            "source_lag_seconds",
            "max_source_lag_seconds",
        ],
        [
            "first_batch_id",
            "last_batch_id",
            "batches",
            "records",
            "duplicates",
            "quarantine_rows",
            "mismatched_batches",
            "timed_records",
        ],
    )
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    frame["records_per_batch"] = frame["records"] / frame["batches"].where(frame["batches"] > 0)
    frame["input_rate"] = frame["timed_records"] / frame["timed_seconds"].where(
        frame["timed_seconds"] > 0
    )
    return frame[list(TREND_COLUMNS)]


def _ops_snapshot(batch: int) -> int:
    """The snapshot whose marks are ``_ops``'s (``Snapshot.ops``); a bare batch id reads raw
    commit rows only."""
    ops = getattr(batch, "ops", None)
    return int(batch) if ops is None else ops


def _per_batch(frame: pd.DataFrame) -> pd.DataFrame:
    counts = ["batch_id", "records_read", "bronze_rows", "silver_rows", "quarantine_rows"]
    frame = numeric(
        frame,
        ["duration_seconds", "source_lag_seconds", "interval_seconds"],
        [*counts, "duplicates"],
    )
    interval = frame["interval_seconds"].where(frame["interval_seconds"] > 0)
    accounted = frame["silver_rows"] + frame["quarantine_rows"] + frame["duplicates"]
    shaped = pd.DataFrame(
        {
            "time": pd.to_datetime(frame["batch_start"], utc=True),
            "first_batch_id": frame["batch_id"],
            "last_batch_id": frame["batch_id"],
            "batches": 1,
            "records": frame["records_read"],
            "records_per_batch": frame["records_read"].astype("float64"),
            "input_rate": frame["records_read"] / interval,
            "duplicates": frame["duplicates"],
            "quarantine_rows": frame["quarantine_rows"],
            "mismatched_batches": (frame["bronze_rows"] != accounted).astype("int64"),
            "duration_seconds": frame["duration_seconds"],
            "max_duration_seconds": frame["duration_seconds"],
            "source_lag_seconds": frame["source_lag_seconds"],
            "max_source_lag_seconds": frame["source_lag_seconds"],
            "timed_records": frame["records_read"].where(interval.notna(), 0),
            "timed_seconds": interval,
        }
    )
    return shaped[list(TREND_COLUMNS)]


def window_input_rate(trend: pd.DataFrame) -> float | None:
    """Records per second over the window: Σ records / Σ seconds they arrived in.

    Only batches with a known arrival time count: not the window's first batch, nor, in a
    bucketed trend, each clock hour's first.
    """
    seconds = trend["timed_seconds"].sum()
    if trend.empty or not seconds > 0:
        return None
    return float(trend["timed_records"].sum() / seconds)


def mismatched_batches(trend: pd.DataFrame) -> pd.DataFrame:
    """The rows of a trend whose batches do not reconcile (per batch: the batches themselves)."""
    return trend[trend["mismatched_batches"] > 0].reset_index(drop=True)


# --- quarantine ---------------------------------------------------------------------------


def query_quarantine_reasons(
    engine: QueryEngine, batch: int, window: Window, unit: str
) -> pd.DataFrame:
    """bucket (UTC ingest time), reason, records: quarantined records per reason code."""
    if unit not in ("minute", "hour", "day"):
        raise ValueError(f"unknown bucket unit {unit!r}: minute, hour or day")
    parts = window.rows_params(_ops_snapshot(batch), unit)
    frame = run_query(engine, "health_quarantine_reasons", batch=batch, unit=unit, **parts)
    frame["bucket"] = pd.to_datetime(frame["bucket"], utc=True)
    return numeric(frame, [], ["records"])


def reason_totals(reasons: pd.DataFrame, quarantined: int | None = None) -> pd.DataFrame:
    """reason, records, share: per reason code over the whole window, most frequent first.

    ``share`` is the part of the ``quarantined`` records that carry the reason (so shares
    add up to more than 1 when records fail for several reasons); ``NaN`` without it.
    """
    if reasons.empty:
        return pd.DataFrame(
            {
                "reason": pd.Series(dtype="object"),
                "records": pd.Series(dtype="int64"),
                "share": pd.Series(dtype="float64"),
            }
        )
    totals = reasons.groupby("reason", as_index=False)["records"].sum()
    totals = totals.sort_values(["records", "reason"], ascending=[False, True], ignore_index=True)
    totals["share"] = totals["records"] / quarantined if quarantined else np.nan
    return totals


def query_quarantine_samples(
    engine: QueryEngine, batch: int, window: Window, reason: str | None = None
) -> pd.DataFrame:
    """The newest quarantined records (only those with ``reason``, when given).

    Columns are ``SAMPLE_COLUMNS``. ``payload`` is what to show: the text when the record
    was UTF-8 (``encoding`` ``"utf-8"``), else its base64 (``"base64"``), cut to the first
    2,000 characters (``truncated`` says so; ``payload_chars`` is the full length).
    ``reasons`` is one comma-separated string whatever array form the engine returns.
    """
    frame = _newest_samples(engine, batch, window, reason or "")
    if frame.empty:
        return pd.DataFrame({name: pd.Series(dtype="object") for name in SAMPLE_COLUMNS})
    frame = numeric(frame, [], ["batch_id"])
    binary = frame["payload_base64"].notna()
    frame["encoding"] = np.where(binary, "base64", "utf-8")
    frame["payload"] = frame["payload_base64"].where(binary, frame["payload"]).fillna("")
    full = pd.to_numeric(frame["base64_chars"].where(binary, frame["payload_chars"]))
    frame["payload_chars"] = full.fillna(0).astype("int64")
    frame["truncated"] = frame["payload_chars"] > frame["payload"].str.len()
    frame["reasons"] = frame["reasons"].map(_reason_text)
    frame["ingest_time"] = pd.to_datetime(frame["ingest_time"], utc=True)
    return frame[list(SAMPLE_COLUMNS)].reset_index(drop=True)


def _newest_samples(engine: QueryEngine, batch: int, window: Window, reason: str) -> pd.DataFrame:
    """The query's newest records, read from the window's last day first: when that day
    holds a whole sample, no older record can be among the newest, so a month's window
    reads a day of quarantine instead of a month of raw payloads (bench/results.md).
    Otherwise the whole window is read, and the answer is the same either way."""

    def newest(over: Window) -> pd.DataFrame:
        params = over.params()
        return run_query(engine, "health_quarantine_samples", batch=batch, reason=reason, **params)

    end = min(window.until, datetime.now(UTC))
    if end - window.since > 2 * SAMPLE_RECENT:  # a short window is read whole at once
        frame = newest(Window(since=end - SAMPLE_RECENT, until=window.until))
        if len(frame) >= SAMPLE_LIMIT:
            return frame
    return newest(window)


def _reason_text(value: object) -> str:
    """DuckDB returns arrays as lists; Athena's result sets as text like ``[a, b]``."""
    if value is None:
        return ""
    if isinstance(value, str):
        items = value.strip().removeprefix("[").removesuffix("]").split(",")
    else:
        items = list(value)
    return ", ".join(str(item).strip() for item in items if str(item).strip())


def sample_labels(samples: pd.DataFrame) -> dict[str, str]:
    """Each sample's key (batch/shard/sequence number) and the label a picker shows for it."""
    return {
        f"{row.batch_id}/{row.shard_id}/{row.sequence_number}": (
            f"batch #{row.batch_id} · …{str(row.sequence_number)[-6:]} · {row.reasons}"
        )
        for row in samples.itertuples()
    }


def pick_sample(samples: pd.DataFrame, key: str | None) -> pd.Series:
    """The sample with ``key`` (a ``sample_labels`` key), else the newest."""
    keys = list(sample_labels(samples))
    return samples.iloc[keys.index(key)] if key in keys else samples.iloc[0]


def shorten(text: str, limit: int = 120) -> str:
    """One display line: line breaks shown as ⏎, cut to ``limit`` characters with an ellipsis."""
    line = text.replace("\r\n", "⏎").replace("\n", "⏎").replace("\r", "⏎")
    return line if len(line) <= limit else line[: limit - 1] + "…"
