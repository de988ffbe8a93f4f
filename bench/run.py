"""`make bench`: every benchmark of the local stack in one run, written to bench/results.md.

Phases, each a module of its own that can also run alone:

1. stream (``stream_bench``): producer send rate, the job draining a queued backlog, and
   live runs at 200, 1,000, 5,000 and 10,000 events/s with produce-to-`kpi` freshness;
2. history (``history``): 365 days of gold laid out as the compacting job leaves it, the
   last 30 in full and the older ones in rollup form, plus 30-, 7- and 1-day copies;
3. pages (``pages_bench``): every page's server-side run, each query, and the gold bytes a
   refresh reads, over each history;
4. baseline (``baseline_bench``): the naive designs against ours on the same events;
5. memory (``memory_bench``): resident memory of every `telcopulse up` process;
6. viewers (``viewers_bench``): 20 browser sessions auto-refreshing every 5 s for 5
   minutes; also writes its section of docs/reliability.md.

Figures go to bench/results.json too. ``--skip`` leaves phases out (their section keeps
the figures of the last run that had them, and says when those were measured). Usage,
from the checkout's root:

    .venv/bin/python -m bench.run [--skip memory] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import parse_utc_minute, utc_minute
from glue_job.defaults import DEFAULT_TRIGGER_SECONDS

# Pages run outside a Streamlit server here, which Streamlit warns about on every run.
os.environ.setdefault("STREAMLIT_LOGGER_LEVEL", "error")

BENCH = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH.parent
RESULTS_MD = BENCH / "results.md"
RESULTS_JSON = BENCH / "results.json"
HISTORY_HOME = PROJECT_ROOT / ".telcopulse" / "bench"
PHASES = ("stream", "history", "pages", "baseline", "memory", "viewers")
TARGETS = {
    "throughput": 10_000,  # events/s, sustained with p95 freshness <= 10 s
    "throughput_p95": 10.0,
    "fresh_1000_p95": 2.0,  # s from PutRecord to visible in `kpi`, at 1,000 events/s
    "startup_s": 8.0,  # `telcopulse stream` launched to its first batch committed
    "drain": 20_000,  # events/s draining a backlog on DRAIN_SHARDS shards
    "page_ms": 300.0,  # server-side p95 at every range preset, 30 days of gold
    "page_ms_year": 500.0,  # the same with 365 days of history
    "refresh_mb": 5.0,  # gold read per refresh at every range preset
    "stack_gb": 2.5,
}
DRAIN_SHARDS = 2
# Refreshes timed per page, range and history: with 20, p95 is the second slowest rather
# than the slowest (10 gave a page's single 312 ms outlier among nine runs under 190 ms).
PAGE_RUNS = 20
LIVE_RATES = (200, 1_000, 5_000, 10_000)
HISTORY_DAYS = (1, 7, 30, 365)
# Days of the largest history kept in full; older ones hold only their hour and day rollups,
# which is all a page reads of them ("rollup form", bench.history --detail-days).
HISTORY_DETAIL_DAYS = 30
# How long after a history's end its pages may still be timed (the "1 h" preset ends now).
HISTORY_FRESH = timedelta(minutes=15)
# How long writing the histories takes when no earlier run says (365 days, 30 in full:
# about 25 minutes on the 2-core machine on 2026-12-07): they end that far in the future.
HISTORY_WRITE_MINUTES = 25.0


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) * 1024
    except OSError:
        pass
    import duckdb
    import pyspark
    import streamlit

    return {
        "date": utc_minute(),
        "cores": os.cpu_count(),
        "memory_gib": round(memory / 2**30, 1),
        "cpu": cpu,
        "python": platform.python_version(),
        "spark": pyspark.__version__,
        "duckdb": duckdb.__version__,
        "streamlit": streamlit.__version__,
        "java": _java_version(),
    }


def _java_version() -> str:
    try:
        out = subprocess.run(
            ["java", "-version"], capture_output=True, text=True, check=False, timeout=30
        )
    except OSError:
        return "not found"
    return (out.stderr or out.stdout).splitlines()[0].strip()


# -- phases ------------------------------------------------------------------------------------


def run_stream(quick: bool) -> dict:
    from bench import stream_bench

    root = Path(tempfile.mkdtemp(prefix="telcopulse-bench-stream-"))
    try:
        return stream_bench.run(
            root,
            drain=100_000 if quick else 400_000,
            rates=[200, 1000] if quick else list(LIVE_RATES),
            seconds=20 if quick else 60,
            shards=DRAIN_SHARDS,
            log=log,
        )
    except BaseException:
        # The emulator's, the job's and the producers' logs say why; the root goes.
        kept = PROJECT_ROOT / "build" / "bench-stream-logs"
        shutil.rmtree(kept, ignore_errors=True)
        for found in root.rglob("*.log"):
            target = kept / found.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(found, target)
        log(f"the stream phase failed: its logs are in {kept.relative_to(PROJECT_ROOT)}/")
        raise
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_history(quick: bool) -> dict:
    from bench.lakes import MARKER, gold_files, history_homes, lake_of

    days, detail = (3, 2) if quick else (max(HISTORY_DAYS), HISTORY_DETAIL_DAYS)
    # The histories end about when this phase does, so the pages phase times full windows.
    end_in = 0.0 if quick else writing_minutes(HISTORY_HOME, days)
    command = [
        sys.executable,
        "-m",
        "bench.history",
        "--home",
        str(HISTORY_HOME),
        "--days",
        str(days),
        "--detail-days",
        str(detail),
        "--end-in",
        f"{end_in:.0f}",
        "--force",
        *[arg for d in HISTORY_DAYS if d < days for arg in ("--also", str(d))],
    ]
    # Histories of other sizes (an earlier --quick run) must not be measured as this run's.
    wanted = {d for d in (days, *HISTORY_DAYS) if d <= days}
    for size, stale in history_homes(HISTORY_HOME).items():
        if size not in wanted:
            shutil.rmtree(stale)
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=PROJECT_ROOT)
    facts = {}
    for _, home in sorted(history_homes(HISTORY_HOME).items()):
        info = json.loads((home / MARKER).read_text())
        gold = gold_files(lake_of(home))
        info["gold_files"] = len(gold)
        info["gold_bytes_on_disk"] = sum(p.stat().st_size for p in gold)
        facts[str(info["days"])] = info
    return {"seconds": round(time.perf_counter() - started), "lakes": facts}


def writing_minutes(home: Path, days: int) -> float:
    """How long the last run took to write a ``days`` history under ``home`` (its marker's
    seconds), else ``HISTORY_WRITE_MINUTES``."""
    from bench.lakes import described, history_home

    seconds = described(history_home(home, days)).get("seconds")
    return seconds / 60 if seconds else HISTORY_WRITE_MINUTES


def stale_histories(homes: dict[int, Path], now: datetime) -> list[str]:
    """Histories that ended more than HISTORY_FRESH before ``now``, as "<days> d
    ended <time>": the range presets end now, so "1 h" would time a mostly empty window."""
    from bench.lakes import described

    stale = []
    for days, home in sorted(homes.items()):
        end = described(home).get("end")
        if end is None or now - parse_utc_minute(end) > HISTORY_FRESH:
            stale.append(f"{days} d ended {end or 'at an unknown time'}")
    return stale


def run_pages(quick: bool) -> dict:
    from bench import pages_bench
    from bench.lakes import described, history_homes

    homes = history_homes(HISTORY_HOME)
    # A history written faster than it was told ends in the future: wait for its end, so
    # no window holds minutes that have not happened yet (one without an end is stale).
    ends = [parse_utc_minute(end) for h in homes.values() if (end := described(h).get("end"))]
    if ends and (wait := (max(ends) - datetime.now(UTC)).total_seconds()) > 0:
        log(f"waiting {wait:.0f} s for the histories' end")
        time.sleep(wait)
    if stale := stale_histories(homes, datetime.now(UTC)):
        raise SystemExit(
            f"bench: the page histories are stale ({'; '.join(stale)}), so the 1 h preset would "
            "time an almost empty window: rebuild them with `python -m bench.run --only history "
            "--only pages`"
        )
    results, timer = pages_bench.measure_pages(
        homes, runs=3 if quick else PAGE_RUNS, cold=1 if quick else 2, log=log
    )
    pages = [
        {
            "page": r.page,
            "preset": r.preset,
            "days": r.days,
            "cold_ms": r.cold_ms,
            "refresh_ms": r.refresh_ms,
            "warm_ms": r.warm_ms,
            "query_ms": r.query_ms,
            "gold_bytes": r.gold_bytes,
            "other_bytes": r.other_bytes,
            "problem": r.problem,
        }
        for r in results
    ]
    queries = [
        {
            "query": name,
            "preset": preset,
            "days": days,
            "ms": [c.seconds * 1000 for c in calls],
            "bytes": [c.bytes_read for c in calls],
            "gold": calls[0].gold,
        }
        for (name, preset, days), calls in sorted(timer.by_query.items())
    ]
    return {"pages": pages, "queries": queries}


def run_baseline(quick: bool) -> dict:
    from bench import baseline_bench

    return baseline_bench.run(
        hours=1 if quick else 6, rate=200, outage_minutes=10, runs=3 if quick else 5, log=log
    )


def run_memory(quick: bool) -> dict:
    from bench import memory_bench

    return memory_bench.measure(30 if quick else 180, 200, log=log, samples_every=30)


def run_viewers(quick: bool) -> dict:
    from bench import viewers_bench
    from bench.long_runs import replace_section

    figures = viewers_bench.measure(4 if quick else 20, 1 if quick else 5, 200, log=log)
    if not quick:  # a check's figures are not the measurement docs/reliability.md shows
        replace_section("viewers", viewers_bench.report(figures))
    return {**figures, "summary": viewers_bench.summary(figures)}


RUNNERS = {
    "stream": run_stream,
    "history": run_history,
    "pages": run_pages,
    "baseline": run_baseline,
    "memory": run_memory,
    "viewers": run_viewers,
}


# -- report ------------------------------------------------------------------------------------


def p(values: list[float], share: float) -> float:
    """The ``share`` percentile; infinite when nothing was measured (the page failed)."""
    if not values:
        return float("inf")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("inf")


def seconds(value) -> str:
    return "—" if value is None else f"{value:.1f} s"


def mb(value: float) -> str:
    return f"{value / 1e6:.2f} MB"


def verdict(met: bool, shortfall: str = "") -> str:
    return "met" if met else f"**not met**{': ' + shortfall if shortfall else ''}"


def live_at(stream: dict, rate: int) -> dict | None:
    return next((r for r in stream.get("live", []) if r["offered_rate"] == rate), None)


def sustained(stream: dict) -> dict | None:
    """The highest live rate the job kept up with, freshness p95 within the target."""
    good = [
        r
        for r in stream.get("live", [])
        if r["p95"] is not None
        and r["p95"] <= TARGETS["throughput_p95"]
        and r["committed_rate"] >= 0.95 * r["sent_rate"]
        and r["backlog_seconds"] < 15
    ]
    return max(good, key=lambda r: r["offered_rate"], default=None)


def earlier_phases(figures: dict) -> dict[str, str]:
    """Phases whose figures an earlier run measured (a skipped phase keeps its last
    figures), with when: any measured more than a couple of hours before this run ended."""
    ended = parse_utc_minute(figures["machine"]["date"])
    return {
        phase: when
        for phase, when in figures.get("measured", {}).items()
        if phase in figures and ended - parse_utc_minute(when) > timedelta(hours=2)
    }


def report(figures: dict) -> str:
    m = figures["machine"]
    out = [
        "# TelcoPulse benchmark results",
        "",
        f"Measured by `make bench` (`python -m bench.run`) on {m['date']}: {m['cores']} cores "
        f"({m['cpu']}), {m['memory_gib']} GiB memory; Python {m['python']}, Spark "
        f"{m['spark']}, DuckDB {m['duckdb']}, Streamlit {m['streamlit']}, {m['java']}. "
        "Everything runs on this one machine at once: the Kinesis emulator, the producers, "
        "the stream job and the dashboard share its cores. Rerun with `make bench` "
        "(70 minutes on this machine on 2026-12-07: the stream phase 10, the 365-day "
        "history 18, its pages 22, the viewers 12); each phase can also run alone (see "
        "`bench/run.py`).",
        "",
    ]
    earlier = earlier_phases(figures)
    if earlier:
        out += [
            "**Not all from this run**: "
            + "; ".join(f"the {phase} figures are from {when}" for phase, when in earlier.items())
            + f" (this run left {'it' if len(earlier) == 1 else 'them'} out). Rows of the "
            "targets table that rest on them say so.",
            "",
        ]
    out += targets_section(figures)
    out += stream_section(figures.get("stream"), figures.get("measured", {}).get("stream"))
    out += pages_section(figures.get("history"), figures.get("pages"), figures.get("measured", {}))
    out += baseline_section(figures.get("baseline"), figures.get("measured", {}).get("baseline"))
    out += memory_section(figures.get("memory"), figures.get("measured", {}).get("memory"))
    out += viewers_section(figures.get("viewers"), figures.get("measured", {}).get("viewers"))
    return "\n".join(out) + "\n"


def viewers_section(viewers: dict | None, when: str | None) -> list[str]:
    if not viewers:
        return []
    from bench.viewers_bench import seconds_text

    s = viewers["summary"]
    return [
        "## Many viewers",
        "",
        f"Measured {when}: {viewers['viewers']} headless Chromium sessions on `telcopulse up "
        f"--rate {viewers['rate']:g}`, each auto-refreshing every {viewers['refresh_seconds']} "
        f"s for {viewers['minutes']:g} minutes: {s['answered']['runs']:,} refreshes answered "
        f"by the dashboard in p50 {seconds_text(s['answered']['p50'])}, p95 "
        f"{seconds_text(s['answered']['p95'])} (drawn in this machine's browser: p95 "
        f"{seconds_text(s['drawn']['p95'])}), {len(s['errors'])} errors. Per page and in full: "
        "[docs/reliability.md](../docs/reliability.md).",
        "",
    ]


def targets_section(figures: dict) -> list[str]:
    stream, pages, memory = figures.get("stream"), figures.get("pages"), figures.get("memory")
    rows = []
    if stream:
        rows += stream_targets(stream)
        since = earlier_phases(figures).get("stream") if "machine" in figures else None
        if since:  # the stream phase was left out of this run: its rows say when they are from
            rows = [(a, f"{b} (stream phase of {since})", c) for a, b, c in rows]
    if pages:
        rows += page_targets(pages)
    if memory:
        peak = max(
            [sum(t["rss"].values()) + memory["supervisor"] for t in memory["timeline"]]
            + [sum(memory["end"].values()) + memory["supervisor"]]
        )
        rows.append(
            (
                "`telcopulse up` within 2.5 GB resident",
                f"peak {peak / 2**30:.2f} GiB",
                verdict(
                    peak <= TARGETS["stack_gb"] * 2**30,
                    f"{(peak - TARGETS['stack_gb'] * 2**30) / 2**20:.0f} MiB over",
                ),
            )
        )
    out = ["## Targets", "", "| target | measured | |", "|---|---|---|"]
    out += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return [*out, ""]


def stream_targets(stream: dict) -> list[tuple[str, str, str]]:
    rows = []
    top = live_at(stream, 10_000)
    best = sustained(stream)
    if top:
        met = top is best
        drain = stream["drain"]["steady_rate"]
        shortfall = (
            f"at 10,000 events/s offered the job committed {top['committed_rate']:,.0f}/s "
            f"with p95 freshness {seconds(top['p95'])}; the highest rate kept within "
            f"target was {best['offered_rate']:,.0f}/s"
            if best
            else "no live rate met it"
        ) + (
            f". Draining a backlog alone it processes {drain:,.0f} events/s: the emulator "
            "and the producers take the rest of the two cores (see below)"
        )
        rows.append(
            (
                "stream job sustains 10,000 events/s with p95 freshness ≤ 10 s",
                f"{top['committed_rate']:,.0f}/s committed, p95 {seconds(top['p95'])}",
                verdict(met, "" if met else shortfall),
            )
        )
    fresh = live_at(stream, 1_000)
    if fresh:
        ok = fresh["p95"] is not None and fresh["p95"] <= TARGETS["fresh_1000_p95"]
        rows.append(
            (
                "p95 freshness ≤ 2 s at 1,000 events/s",
                f"p95 {seconds(fresh['p95'])} (p50 {seconds(fresh['p50'])})",
                verdict(
                    ok,
                    f"{fresh['p95'] - TARGETS['fresh_1000_p95']:.1f} s over" if not ok else "",
                ),
            )
        )
    drain = stream["drain"]
    startup = drain.get("startup_seconds")
    if startup is not None:
        rows.append(
            (
                "`telcopulse stream` to its first committed batch ≤ 8 s",
                f"{startup:.1f} s",
                verdict(
                    startup <= TARGETS["startup_s"],
                    f"{startup - TARGETS['startup_s']:.1f} s over",
                ),
            )
        )
    idle = drain.get("idle_exit_seconds")
    if idle is not None:
        rows.append(
            (
                "`stream --until-idle` exits within one trigger interval (2 s) of the "
                "stream running dry",
                f"{idle:.1f} s from its last commit",
                verdict(
                    idle <= DEFAULT_TRIGGER_SECONDS,
                    f"{idle - DEFAULT_TRIGGER_SECONDS:.1f} s over",
                ),
            )
        )
    rows.append(
        (
            f"draining a backlog ≥ 20,000 events/s on {drain['shards']} shards",
            f"{drain['steady_rate']:,.0f} events/s",
            verdict(
                drain["steady_rate"] >= TARGETS["drain"],
                f"{TARGETS['drain'] - drain['steady_rate']:,.0f} events/s short",
            ),
        )
    )
    return rows


def page_targets(pages: dict) -> list[tuple[str, str, str]]:
    """Issue 12's page targets over every range preset of the 30-day history (≤ 300 ms) and
    of the 365-day one (≤ 500 ms), each with the Map's own line; a history this run did not
    build is said to be unmeasured."""
    rows = []
    for days, limit, label in (
        (30, TARGETS["page_ms"], "30 days of gold"),
        (365, TARGETS["page_ms_year"], "365 days of history (rollup form before the last 30)"),
    ):
        history = [r for r in pages["pages"] if r["days"] == days]
        if not history:
            rows.append((f"every page at every range, {label}", "not measured", "—"))
            continue
        map_page = [r for r in history if "Map" in r["page"]]
        for who, found in (("every page", history), ("the Map page", map_page)):
            slow = max(found, key=lambda r: p(r["refresh_ms"], 0.95))
            value = p(slow["refresh_ms"], 0.95)
            rows.append(
                (
                    f"{who} ≤ {limit:.0f} ms p95 server-side at every range preset, {label}",
                    f"slowest: {_page_name(slow)} at {slow['preset']}, p95 {value:.0f} ms",
                    verdict(value <= limit, slow["problem"] or f"{value - limit:.0f} ms over"),
                )
            )
            heavy = max(found, key=lambda r: median(r["gold_bytes"]))
            gold = median(heavy["gold_bytes"])
            rows.append(
                (
                    f"{who}: a refresh reads ≤ 5 MB of gold at every range preset, {label}",
                    f"most: {_page_name(heavy)} at {heavy['preset']}, {mb(gold)}",
                    verdict(gold <= TARGETS["refresh_mb"] * 1e6, f"{mb(gold - 5e6)} over"),
                )
            )
    return rows


def _page_name(row: dict) -> str:
    return Path(row["page"]).stem.lstrip("0123456789_").replace("_", " ") or row["page"]


def stream_section(stream: dict | None, when: str | None) -> list[str]:
    if not stream:
        return []
    drain = stream["drain"]
    out = [
        "## Stream job",
        "",
        f"Measured {when}. Producer: one `send` loop puts {drain['events']:,} synthetic "
        f"events on the local Kinesis at {drain['producer_rate']:,.0f} events/s (500-record "
        "PutRecords, unpaced).",
        "",
        f"**Draining a backlog** of {drain['events']:,} queued events ({drain['shards']} "
        f"shards, `stream --until-idle`, nothing else running): {drain['batches']} batches, "
        f"{drain['steady_rate']:,.0f} events/s after the first batch, which carries "
        f"{drain['first_batch_seconds']:.1f} s of JVM and Python worker warm-up. "
        + (
            f"From launching the job to its first commit: {drain['startup_seconds']:.1f} s; "
            f"from its last commit to its exit: {drain['idle_exit_seconds']:.1f} s."
            if "startup_seconds" in drain
            else ""
        ),
        "",
        "**Live**: producers (`telcopulse produce`, one process per 5,000 events/s) and the "
        "job (`telcopulse stream`, 2 s trigger) running together; a marker event every 2 s, "
        "timed from its PutRecord to the moment `kpi signal` (the CLI's query) returns it. "
        "Shards as AWS would need them (1,000 records/s each). Backlog: from the producers' "
        "stop to the end of the last batch that still read records.",
        "",
        "| offered events/s | shards | sent/s | committed/s | mean batch | freshness p50 | p95 "
        "| max | markers | backlog |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in stream["live"]:
        out.append(
            f"| {r['offered_rate']:,.0f} | {r['shards']} | {r['sent_rate']:,.0f} | "
            f"{r['committed_rate']:,.0f} | {r['mean_batch_records']:,.0f} | {seconds(r['p50'])} | "
            f"{seconds(r['p95'])} | {seconds(r['max'])} | {r['samples']} | "
            f"{r['backlog_seconds']:.1f} s |"
        )
    best = sustained(stream)
    out += [
        "",
        "Sustained with bounded freshness (committed ≥ 95 % of sent, p95 ≤ 10 s, backlog "
        f"< 15 s): **{best['offered_rate']:,.0f} events/s**."
        if best
        else "",
        "",
    ]
    return out


def pages_section(history: dict | None, pages: dict | None, measured: dict) -> list[str]:
    if not pages:
        return []
    out = ["## Dashboard: server-side time and gold read per refresh", ""]
    if history:
        out.append(f"History written by `bench.history` in {history['seconds']} s:")
        out.append("")
        out.append("| history | events | held | gold files | gold on disk |")
        out.append("|---|---:|---|---:|---:|")
        for days, info in sorted(history["lakes"].items(), key=lambda kv: int(kv[0])):
            # Smaller histories are copies of the largest with the older days removed.
            events = int(days) * 86_400 * info["rate"]
            detail = info.get("detail_days") or int(days)
            held = (
                "in full"
                if detail >= int(days)
                else f"last {detail} d in full, older days as hour and day rollups only"
            )
            out.append(
                f"| {days} d | {events:,} at {info['rate']}/s | {held} "
                f"| {info['gold_files']:,} | {mb(info['gold_bytes_on_disk'])} |"
            )
        out.append("")
    out += [
        f"Measured {measured.get('pages')} with `streamlit.testing.v1.AppTest`: a refresh "
        "is a whole script run with the query cache cleared (what every auto-refresh tick "
        "does); p50/p95 over the runs. Gold read: bytes of Parquet column chunks DuckDB "
        "scanned for the page's gold queries in one refresh (its profiler's "
        "`total_bytes_scanned`), the stand-in for what Athena bills. `_ops`, quarantine and "
        "compaction reads are shown apart (health page).",
        "",
    ]
    presets = sorted({r["preset"] for r in pages["pages"]}, key=["1 h", "24 h", "7 d", "all"].index)
    days_all = sorted({r["days"] for r in pages["pages"]})
    header = "| page | range | " + " | ".join(f"{d} d: refresh p50/p95 · gold" for d in days_all)
    out += [header + " |", "|---|---|" + "---:|" * len(days_all)]
    for preset in presets:
        for page in sorted({r["page"] for r in pages["pages"]}):
            cells = []
            for days in days_all:
                row = next(
                    (
                        r
                        for r in pages["pages"]
                        if r["page"] == page and r["preset"] == preset and r["days"] == days
                    ),
                    None,
                )
                if row is None or not row["refresh_ms"]:
                    cells.append(row["problem"] if row else "—")
                    continue
                gold = median(row["gold_bytes"])
                other = median(row["other_bytes"])
                extra = f" (+{mb(other)} other)" if other > 1e5 else ""
                cells.append(
                    f"{p(row['refresh_ms'], 0.5):.0f} / {p(row['refresh_ms'], 0.95):.0f} ms · "
                    f"{mb(gold)}{extra}"
                )
            out.append(f"| {page} | {preset} | " + " | ".join(cells) + " |")
    out += [
        "",
        "Queries (DuckDB time per call inside the refreshes, p50; bytes scanned per call):",
        "",
        "| query | range | " + " | ".join(f"{d} d" for d in days_all) + " |",
        "|---|---|" + "---:|" * len(days_all),
    ]
    by = {(q["query"], q["preset"], q["days"]): q for q in pages["queries"]}
    for name, preset in sorted({(q["query"], q["preset"]) for q in pages["queries"]}):
        cells = []
        for days in days_all:
            q = by.get((name, preset, days))
            cells.append(f"{p(q['ms'], 0.5):.1f} ms · {mb(median(q['bytes']))}" if q else "—")
        out.append(f"| {name} | {preset} | " + " | ".join(cells) + " |")
    out.append("")
    return out


def baseline_section(base: dict | None, when: str | None) -> list[str]:
    if not base:
        return []
    ours, naive, scan = base["ours"], base["naive_averages"], base["silver_scan"]
    out = [
        "## Baseline: the naive designs on the same events",
        "",
        f"Measured {when}. {base['hours']:g} h of events at {base['rate']}/s "
        f"({base['events']:,} events in {base['batches']:,} micro-batches), with one "
        f"{base['outage_minutes']:g}-minute stretch when the job was down and signal was "
        f"poor: its {base['backlog_batch_events']:,} events arrive in one backlog batch. "
        "Question: average signal per operator over the whole range (median of the runs).",
        "",
        "| design | query time | bytes scanned | worst error vs exact |",
        "|---|---:|---:|---:|",
        f"| ours: compacted one-minute gold, Σ sum / Σ count | {ours['ms']:.1f} ms | "
        f"{mb(ours['bytes'])} | {ours['max_error_db']:.2g} dB |",
        f"| naive: average of per-batch averages, one file per batch | {naive['ms']:.1f} ms "
        f"({naive['ms'] / ours['ms']:.0f}×) | {mb(naive['bytes'])} "
        f"({naive['bytes'] / max(ours['bytes'], 1):.0f}×) | **{naive['max_error_db']:.1f} dB** "
        f"({naive['worst_operator']}) |",
        f"| naive: scan silver | {scan['ms']:.1f} ms ({scan['ms'] / ours['ms']:.0f}×) | "
        f"{mb(scan['bytes'])} ({scan['bytes'] / max(ours['bytes'], 1):.0f}×) | exact (the "
        "reference) |",
        "",
        "The average of averages gives the backlog batch the weight of one 2-second batch, "
        "however many events it holds, so the bad stretch all but disappears from the KPI; "
        "summing partial sums and counts weighs every event once. Per operator (dBm):",
        "",
        "| operator | exact | ours | average of averages |",
        "|---|---:|---:|---:|",
    ]
    for row in base["per_operator"]:
        out.append(
            f"| {row['operator']} | {row['exact']:.2f} | {row['ours']:.2f} | {row['naive']:.2f} |"
        )
    return [*out, ""]


def memory_section(memory: dict | None, when: str | None) -> list[str]:
    if not memory:
        return []
    names = sorted(memory["start"])
    out = [
        "## Memory of `telcopulse up`",
        "",
        f"Measured {when}: `telcopulse up --rate {memory['rate']:g}` for "
        f"{memory['seconds']:.0f} s after its first committed batch, every page opened in "
        "headless Chromium at the start and at the end. Resident set of each component with "
        "all its child processes (the stream job's JVM and Python workers, the emulator's "
        "node).",
        "",
        "| process | start | end |",
        "|---|---:|---:|",
    ]
    for name in names:
        out.append(
            f"| {name} | {memory['start'][name] / 2**20:.0f} MiB | "
            f"{memory['end'].get(name, 0) / 2**20:.0f} MiB |"
        )
    total_start = sum(memory["start"].values()) + memory["supervisor"]
    total_end = sum(memory["end"].values()) + memory["supervisor"]
    out += [
        f"| `telcopulse up` itself | {memory['supervisor'] / 2**20:.0f} MiB | |",
        f"| **total** | **{total_start / 2**20:.0f} MiB** | **{total_end / 2**20:.0f} MiB** |",
        "",
        "Pages opened in Chromium: "
        + ("all fine." if not memory["page_problems"] else "; ".join(memory["page_problems"])),
        "",
    ]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip", action="append", choices=PHASES, default=[])
    parser.add_argument("--only", action="append", choices=PHASES, default=[])
    parser.add_argument("--quick", action="store_true", help="small sizes: a check, not figures")
    args = parser.parse_args(argv)
    os.chdir(PROJECT_ROOT)
    figures = json.loads(RESULTS_JSON.read_text()) if RESULTS_JSON.exists() else {}
    figures.setdefault("measured", {})
    phases = [ph for ph in PHASES if ph not in args.skip and (not args.only or ph in args.only)]
    for phase in phases:
        log(f"phase {phase}")
        started = time.perf_counter()
        figures[phase] = RUNNERS[phase](args.quick)
        figures["measured"][phase] = utc_minute()
        log(f"phase {phase} done in {time.perf_counter() - started:.0f} s")
        RESULTS_JSON.write_text(json.dumps(figures, indent=1, default=str))
    figures["machine"] = machine()
    RESULTS_JSON.write_text(json.dumps(figures, indent=1, default=str))
    RESULTS_MD.write_text(report(figures), encoding="utf-8")
    log(f"wrote {RESULTS_MD.relative_to(PROJECT_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
