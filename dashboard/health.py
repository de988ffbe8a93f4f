"""Pipeline Health page (presentation layer): the stream, freshness, batches and quarantine.

``pages/3_Pipeline_Health.py`` calls these in order, each with what it draws passed in
explicitly; the decisions behind them (reconciliation, resolution, sample picking) are
``backend.health_data`` functions, and the figures are ``dashboard.health_charts``.
"""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from backend import health_data as health
from backend.kinesis import StreamStatus, check_stream, stream_client
from backend.settings import Settings
from dashboard import columns, health_charts, panels
from dashboard.cache import Loaded, timed
from dashboard.page import Page

# The stream probe is cheap and says "is it up right now", so it is only reused briefly.
STREAM_TTL_SECONDS = 15
STREAM_TIMEOUT_SECONDS = 1.0
ALL_REASONS = "all reasons"


def stream_key(settings: Settings) -> str:
    return f"{settings.mode}:{settings.region}:{settings.endpoint_url}:{settings.stream_name}"


@st.cache_resource(show_spinner=False)
def _stream_client(key: str, _settings: Settings):
    # Building a boto3 client costs more than the probe itself: keep one per stream.
    return stream_client(_settings, STREAM_TIMEOUT_SECONDS)


@st.cache_data(ttl=STREAM_TTL_SECONDS, max_entries=16, show_spinner=False)
def _stream_status(key: str, tick: int, _settings: Settings) -> Loaded[StreamStatus]:
    return timed(check_stream, _stream_client(key, _settings), _settings)


def stream_status(settings: Settings, tick: int) -> Loaded[StreamStatus]:
    """The stream's status, probed at most every ``STREAM_TTL_SECONDS``; never raises."""
    return _stream_status(stream_key(settings), tick, settings)


def show_stream(page: Page) -> None:
    """Whether the Kinesis endpoint answers, and the stream's status and open shards."""
    st.subheader(
        "Stream",
        help="A DescribeStreamSummary call to the Kinesis endpoint (1 s timeout, "
        f"re-checked at most every {STREAM_TTL_SECONDS} s). Open shards are the "
        "shards accepting new records.",
    )
    probed = stream_status(page.settings, page.refresh.tick)
    page.timings["stream status (Kinesis)"] = probed
    stream = probed.value
    badge, shards, state = st.columns([2, 1, 1])
    with badge:
        if stream.answers:
            st.badge("Endpoint answers", icon=":material/check_circle:", color="green")
        else:
            st.badge("Endpoint does not answer", icon=":material/cancel:", color="red")
        st.caption(f"Stream `{stream.stream_name}` at `{stream.endpoint}`")
    shards.metric(
        "Open shards", panels.MISSING if stream.open_shards is None else stream.open_shards
    )
    state.metric("Stream status", stream.status or panels.MISSING)
    if stream.detail:
        hint = ""
        if not stream.answers and page.settings.mode == "local":
            hint = " Start the local stack with `make up` (or `telcopulse emulator`)."
        st.warning(f"{stream.detail}.{hint}", icon=":material/warning:")


def show_freshness(page: Page) -> None:
    """Each layer's last write and newest event, rated green, amber or red."""
    thresholds = (page.settings.freshness_amber_seconds, page.settings.freshness_red_seconds)
    amber, red = thresholds
    st.subheader(
        "Freshness per layer",
        help=f"Time since the newest batch that wrote rows to each layer committed: green "
        f"under {amber} s, amber under {red} s, red after. The newest event is the largest "
        "event time committed there; its age is how far event time trails now. Bronze also "
        "keeps invalid records, which have no event time.",
    )
    layers = page.load("layer freshness", health.query_layer_freshness, thresholds)
    if layers is None:
        return
    now = datetime.now(UTC)
    for column, layer in zip(st.columns(len(layers)), layers, strict=True):
        rated = layer.rated_at(now, amber, red)
        with column.container(border=True):
            if rated.has_data:
                word, colour = panels.LEVELS[rated.level]
                st.badge(word, icon=":material/sensors:", color=colour)
            else:
                st.badge("No data yet", icon=":material/hourglass_empty:", color="gray")
            age = panels.format_age(rated.write_age_seconds)
            st.metric(
                f"{rated.layer.capitalize()} · last write",
                f"{age} ago" if rated.has_data else age,
            )
            st.caption(
                f"Newest event {panels.format_time(rated.newest_event, now)} "
                f"({panels.format_age(rated.event_age_seconds)} old) · newest arrival "
                f"{panels.format_time(rated.newest_arrival, now)}"
            )


def show_batches(page: Page) -> None:
    """The window's batches: totals, reconciliation, throughput and latency, quarantine."""
    st.subheader(f"Batches · {panels.describe_window(page.preset, page.window)}")
    totals = page.load("window totals", health.query_window_totals)
    if totals is None:
        return
    if totals.is_empty:
        st.info(
            f"No batch started in the last {page.preset}. Pick a wider time range in the "
            "sidebar, or check the stream and freshness above.",
            icon=":material/filter_alt_off:",
        )
        return
    resolution = health.pick_resolution(totals)
    trend = page.load("batch trend", health.query_batch_trend, resolution)
    show_totals(totals, None if trend is None else health.window_input_rate(trend))
    show_reconciliation(totals)
    if trend is not None:
        show_trend(trend, resolution)
    show_quarantine(page, totals)


def show_totals(totals: health.WindowTotals, rate: float | None) -> None:
    """The window's batches, records, input rate, quarantined and duplicate counts."""
    cards = (
        ("Batches", f"{totals.batches:,}", "Committed micro-batches that started in the window."),
        (
            "Records read",
            f"{totals.records:,}",
            "Records read from the stream: every one is in bronze.",
        ),
        (
            "Input rate (rec/s)",
            panels.MISSING if rate is None else f"{rate:,.1f}",
            "Records per second of arrival: Σ records / Σ time between batch starts (the "
            "window's first batch has no such time and is left out; over more than "
            f"{health.MAX_BATCH_POINTS:,} batches, neither has each clock hour's first).",
        ),
        (
            "Quarantined",
            f"{totals.quarantine_rows:,}",
            "Records that failed validation; see the reasons below.",
        ),
        (
            "Duplicates dropped",
            f"{totals.duplicates:,}",
            "Valid records whose event_id was already seen (in the batch, or in silver within "
            "the dedup horizon): first arrival wins.",
        ),
    )
    for place, (label, value, help_text) in zip(st.columns(len(cards)), cards, strict=True):
        place.metric(label, value, help=help_text, border=True)


def show_reconciliation(totals: health.WindowTotals) -> None:
    st.subheader(
        "Reconciliation",
        help="Every record read must end in exactly one place: bronze = silver + quarantine "
        "+ duplicates dropped. Checked on the window's totals, on each batch, and against "
        "the records the quarantine table really holds for those batches.",
    )
    equation = health.reconciliation_equation(totals)
    if totals.reconciled:
        st.success(
            f"Reconciled: {equation}, in all {totals.batches:,} batches.",
            icon=":material/check_circle:",
        )
        return
    problems = health.reconciliation_problems(totals)
    st.error("Does not reconcile: " + "; ".join(problems) + ".", icon=":material/error:")


def show_trend(trend, resolution: str) -> None:
    st.subheader(
        "Throughput and latency",
        help="Per batch, or per time bucket when the window holds more than "
        f"{health.MAX_BATCH_POINTS:,} batches (then the solid line is the bucket's "
        "average and the dotted one its worst batch). Duration: the batch's processing "
        "time. Source lag: from the newest record's arrival on the stream to the batch start.",
    )
    if trend.empty:
        st.info("No batches in this window.")
        return
    charts = [
        ("input_rate", "input rate", "records/s", None),
        ("records_per_batch", "records per batch", "records", None),
        ("duration_seconds", "batch duration", "s", "max_duration_seconds"),
        ("source_lag_seconds", "source lag", "s", "max_source_lag_seconds"),
    ]
    for row in (charts[:2], charts[2:]):
        for place, (column, title, unit, worst) in zip(st.columns(2), row, strict=True):
            place.markdown(f"**{title.capitalize()}** ({unit})")
            place.plotly_chart(
                health_charts.trend_line(
                    trend, column, title=title, unit=unit, resolution=resolution, worst=worst
                ),
                width="stretch",
            )
    st.markdown("**Duplicates dropped and records quarantined** (records)")
    st.plotly_chart(health_charts.dropped_bars(trend, resolution), width="stretch")
    mismatched = health.mismatched_batches(trend)
    if not mismatched.empty:
        st.markdown(":red[**Batches that do not reconcile**]")
        st.dataframe(
            mismatched[["time", "first_batch_id", "last_batch_id", "mismatched_batches"]],
            hide_index=True,
            column_config={
                "time": columns.utc_time("Batch start (UTC)"),
                "first_batch_id": "First batch",
                "last_batch_id": "Last batch",
                "mismatched_batches": "Mismatched batches",
            },
        )


def show_quarantine(page: Page, totals: health.WindowTotals) -> None:
    st.subheader(
        "Quarantine",
        help="Records that failed validation, per reason code (malformed_json, missing_<field>, "
        "bad_type_<field>, out_of_range_<field>, future_event_time…). A record that fails "
        "several rules counts under each of its reasons. Time is ingest time (UTC).",
    )
    if totals.quarantine_rows == 0 and totals.quarantine_table_rows == 0:
        st.info("No record was quarantined in this window.", icon=":material/verified:")
        return
    unit = health.time_unit(totals)
    reasons = page.load("quarantine reasons", health.query_quarantine_reasons, unit)
    codes: list[str] = []
    if reasons is not None:
        by_reason = health.reason_totals(reasons, totals.quarantine_rows)
        codes = by_reason["reason"].tolist()
        chart, table = st.columns([3, 2])
        chart.plotly_chart(health_charts.reasons_stacked(reasons, unit), width="stretch")
        table.dataframe(
            by_reason,
            hide_index=True,
            width="stretch",
            column_config={
                "reason": "Reason",
                "records": columns.count("Records"),
                "share": columns.share(
                    "Share of quarantined",
                    help="Part of the window's quarantined records that carry this reason.",
                ),
            },
        )
    only = st.selectbox(
        "Sample records with reason",
        [ALL_REASONS, *codes],
        key="health_reason",
        help="The newest quarantined records of the window, of every reason or of one.",
    )
    reason = "" if only in (None, ALL_REASONS) else only
    samples = page.load("quarantine samples", health.query_quarantine_samples, reason)
    if samples is not None:
        show_samples(samples)


def show_samples(samples) -> None:
    st.markdown(
        f"**Newest {len(samples)} quarantined records**",
        help="Raw payloads as received, cut to 2,000 characters. A payload that is not "
        "UTF-8 is shown as base64.",
    )
    if samples.empty:
        st.info("The quarantine table holds no such record for this window.")
        return
    shown = samples.assign(preview=samples["payload"].map(health.shorten))
    st.dataframe(
        shown[
            [
                "ingest_time",
                "batch_id",
                "reasons",
                "encoding",
                "preview",
                "payload_chars",
                "shard_id",
                "sequence_number",
            ]
        ],
        hide_index=True,
        width="stretch",
        column_config={
            "ingest_time": columns.utc_time("Ingested (UTC)"),
            "batch_id": "Batch",
            "reasons": "Reasons",
            "encoding": "Shown as",
            "preview": st.column_config.TextColumn("Payload (start)", width="large"),
            "payload_chars": columns.count("Characters"),
            "shard_id": "Shard",
            "sequence_number": "Sequence number",
        },
    )
    labels = health.sample_labels(samples)
    choice = st.selectbox(
        "Full payload of", list(labels), format_func=labels.get, key="health_sample"
    )
    row = health.pick_sample(samples, choice)
    st.code(row["payload"] or "(empty)", language="json" if row["encoding"] == "utf-8" else None)
    if row["truncated"]:
        st.caption(
            f"The first {len(row['payload']):,} of {row['payload_chars']:,} characters "
            f"({row['encoding']})."
        )
