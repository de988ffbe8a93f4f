"""Pipeline Health page (dashboard): stream, freshness, batches, quarantine, reconciliation."""

from datetime import UTC, datetime

import streamlit as st

from backend import health_data
from backend.dashboard_data import pick_trend_unit
from dashboard import health, panels
from dashboard.health import Timed
from dashboard.page import start_page

page = start_page("Pipeline health", ":material/monitor_heart:")
run_started = datetime.now(UTC)
timings: dict[str, Timed | None] = {}
thresholds = (page.settings.freshness_amber_seconds, page.settings.freshness_red_seconds)
ALL_REASONS = "all reasons"

st.title("Pipeline health")
st.caption(
    "Is the stream job keeping up, and is every record accounted for? Figures come from "
    "`_ops` (one row per committed micro-batch) and the quarantine table. The time range "
    "selects batches by the time they started (UTC), which is also their records' ingest time."
)


def show_stream() -> None:
    st.subheader(
        "Stream",
        help="A DescribeStreamSummary call to the Kinesis endpoint (1 s timeout, "
        f"re-checked at most every {health.STREAM_TTL_SECONDS} s). Open shards are the "
        "shards accepting new records.",
    )
    timed = health.stream_status(page.settings, page.refresh.tick)
    timings["stream status (Kinesis)"] = timed
    stream = timed.value
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


def show_freshness() -> None:
    amber, red = thresholds
    st.subheader(
        "Freshness per layer",
        help=f"Time since the newest batch that wrote rows to each layer committed: green "
        f"under {amber} s, amber under {red} s, red after. The newest event is the largest "
        "event time committed there; its age is how far event time trails now. Bronze also "
        "keeps invalid records, which have no event time.",
    )
    loaded = page.load("layer freshness", health.layers, thresholds)
    timings["layer freshness"] = loaded
    if loaded is None:
        return
    now = datetime.now(UTC)
    for column, layer in zip(st.columns(len(loaded.value)), loaded.value, strict=True):
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


def show_totals(totals: health_data.WindowTotals, rate: float | None) -> None:
    cards = st.columns(5)
    cards[0].metric(
        "Batches",
        f"{totals.batches:,}",
        help="Committed micro-batches that started in the window.",
        border=True,
    )
    cards[1].metric(
        "Records read",
        f"{totals.records:,}",
        help="Records read from the stream: every one is in bronze.",
        border=True,
    )
    cards[2].metric(
        "Input rate (rec/s)",
        panels.MISSING if rate is None else f"{rate:,.1f}",
        help="Records per second of arrival: Σ records / Σ time between batch starts "
        "(the window's first batch has no such time and is left out).",
        border=True,
    )
    cards[3].metric(
        "Quarantined",
        f"{totals.quarantine_rows:,}",
        help="Records that failed validation; see the reasons below.",
        border=True,
    )
    cards[4].metric(
        "Duplicates dropped",
        f"{totals.duplicates:,}",
        help="Valid records whose event_id was already seen (in the batch, or in silver "
        "within the dedup horizon): first arrival wins.",
        border=True,
    )


def show_reconciliation(totals: health_data.WindowTotals) -> None:
    st.subheader(
        "Reconciliation",
        help="Every record read must end in exactly one place: bronze = silver + quarantine "
        "+ duplicates dropped. Checked on the window's totals, on each batch, and against "
        "the records the quarantine table really holds for those batches.",
    )
    equation = (
        f"bronze {totals.bronze_rows:,} = silver {totals.silver_rows:,} + quarantine "
        f"{totals.quarantine_rows:,} + duplicates {totals.duplicates:,}"
    )
    if totals.reconciled:
        st.success(
            f"Reconciled: {equation}, in all {totals.batches:,} batches.",
            icon=":material/check_circle:",
        )
        return
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
    st.error("Does not reconcile: " + "; ".join(problems) + ".", icon=":material/error:")


def show_trend(trend, resolution: str) -> None:
    st.subheader(
        "Throughput and latency",
        help="Per batch, or per time bucket when the window holds more than "
        f"{health_data.MAX_BATCH_POINTS:,} batches (then the solid line is the bucket's "
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
                health.trend_line(
                    trend, column, title=title, unit=unit, resolution=resolution, worst=worst
                ),
                width="stretch",
            )
    st.markdown("**Duplicates dropped and records quarantined** (records)")
    st.plotly_chart(health.dropped_bars(trend, resolution), width="stretch")
    mismatched = health_data.mismatched_batches(trend)
    if not mismatched.empty:
        st.markdown(":red[**Batches that do not reconcile**]")
        st.dataframe(
            mismatched[["time", "first_batch_id", "last_batch_id", "mismatched_batches"]],
            hide_index=True,
            column_config={
                "time": st.column_config.DatetimeColumn(
                    "Batch start (UTC)", format="YYYY-MM-DD HH:mm:ss"
                ),
                "first_batch_id": "First batch",
                "last_batch_id": "Last batch",
                "mismatched_batches": "Mismatched batches",
            },
        )


def show_quarantine(totals: health_data.WindowTotals) -> None:
    st.subheader(
        "Quarantine",
        help="Records that failed validation, per reason code (malformed_json, missing_<field>, "
        "bad_type_<field>, out_of_range_<field>, future_event_time…). A record that fails "
        "several rules counts under each of its reasons. Time is ingest time (UTC).",
    )
    if totals.quarantine_rows == 0 and totals.quarantine_table_rows == 0:
        st.info("No record was quarantined in this window.", icon=":material/verified:")
        return
    unit = pick_trend_unit(totals.first_batch_start, totals.last_batch_start)
    loaded = page.load("quarantine reasons", health.quarantine_reasons, unit)
    timings["quarantine reasons"] = loaded
    codes: list[str] = []
    if loaded is not None:
        reasons = loaded.value
        by_reason = health_data.reason_totals(reasons, totals.quarantine_rows)
        codes = by_reason["reason"].tolist()
        chart, table = st.columns([3, 2])
        chart.plotly_chart(health.reasons_stacked(reasons, unit), width="stretch")
        table.dataframe(
            by_reason,
            hide_index=True,
            width="stretch",
            column_config={
                "reason": "Reason",
                "records": st.column_config.NumberColumn("Records", format="localized"),
                "share": st.column_config.ProgressColumn(
                    "Share of quarantined",
                    format="percent",
                    min_value=0.0,
                    max_value=1.0,
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
    loaded = page.load("quarantine samples", health.quarantine_samples, reason)
    timings["quarantine samples"] = loaded
    if loaded is not None:
        show_samples(loaded.value)


def show_samples(samples) -> None:
    st.markdown(
        f"**Newest {len(samples)} quarantined records**",
        help="Raw payloads as received, cut to 2,000 characters. A payload that is not "
        "UTF-8 is shown as base64.",
    )
    if samples.empty:
        st.info("The quarantine table holds no such record for this window.")
        return
    shown = samples.assign(preview=samples["payload"].map(health_data.shorten))
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
            "ingest_time": st.column_config.DatetimeColumn(
                "Ingested (UTC)", format="YYYY-MM-DD HH:mm:ss"
            ),
            "batch_id": "Batch",
            "reasons": "Reasons",
            "encoding": "Shown as",
            "preview": st.column_config.TextColumn("Payload (start)", width="large"),
            "payload_chars": st.column_config.NumberColumn("Characters", format="localized"),
            "shard_id": "Shard",
            "sequence_number": "Sequence number",
        },
    )
    labels = {
        f"{row.batch_id}/{row.shard_id}/{row.sequence_number}": (
            f"batch #{row.batch_id} · …{str(row.sequence_number)[-6:]} · {row.reasons}"
        )
        for row in samples.itertuples()
    }
    choice = st.selectbox(
        "Full payload of", list(labels), format_func=labels.get, key="health_sample"
    )
    row = samples.iloc[list(labels).index(choice)] if choice in labels else samples.iloc[0]
    st.code(row["payload"] or "(empty)", language="json" if row["encoding"] == "utf-8" else None)
    if row["truncated"]:
        st.caption(
            f"The first {len(row['payload']):,} of {row['payload_chars']:,} characters "
            f"({row['encoding']})."
        )


def show_latency() -> None:
    st.subheader(
        "This page's queries",
        help=f"How long each query took on the {page.engine.name} engine when it last ran. "
        "Results are reused until the refresh interval passes (the stream check for "
        f"{health.STREAM_TTL_SECONDS} s).",
    )
    st.dataframe(
        health.latency_table(timings, run_started),
        hide_index=True,
        column_config={
            "query": "Query",
            "took_ms": st.column_config.NumberColumn("Took", format="%.1f ms"),
            "loaded": "Loaded",
        },
    )


page.require_snapshot()
show_stream()
page.require_data()
show_freshness()

st.subheader(f"Batches · {panels.describe_window(page.preset, page.window)}")
loaded_totals = page.load("window totals", health.totals)
timings["window totals"] = loaded_totals
if loaded_totals is not None:
    totals = loaded_totals.value
    if totals.is_empty:
        st.info(
            f"No batch started in the last {page.preset}. Pick a wider time range in the "
            "sidebar, or check the stream and freshness above.",
            icon=":material/filter_alt_off:",
        )
    else:
        resolution = health_data.pick_resolution(totals)
        loaded_trend = page.load("batch trend", health.batch_trend, resolution)
        timings["batch trend"] = loaded_trend
        trend = None if loaded_trend is None else loaded_trend.value
        show_totals(totals, None if trend is None else health_data.window_input_rate(trend))
        show_reconciliation(totals)
        if trend is not None:
            show_trend(trend, resolution)
        show_quarantine(totals)
show_latency()
