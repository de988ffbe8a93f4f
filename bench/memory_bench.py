"""Memory benchmark (bench): resident memory of every process `telcopulse up` starts.

Starts `telcopulse up` in a throwaway data directory on free ports, opens every dashboard
page in headless Chromium (Debian's ``/usr/bin/chromium`` through Playwright) so the
dashboard's own memory includes real sessions, and samples each component's resident
set (its process and all its children: the stream job's JVM and Python workers, say)
right after start-up and again after ``--seconds``, opening the pages again at the end.
With ``--soak`` (`make soak`: ``--minutes 60 --rate 2000``) it is the soak test: it opens the
KPIs page at every sample, fits each process's memory trend over the last half hour, and
writes its section of docs/reliability.md (``bench.long_runs``).
Usage:

    .venv/bin/python -m bench.memory_bench [--seconds 120 | --minutes M] [--rate 200] [--soak]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

from backend.errors import QueryError
from backend.settings import Settings
from bench import output_file, utc_minute
from bench.long_runs import RELIABILITY_MD, replace_section
from glue_job.dedup import KEY_DTYPE

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
# How the benches launch it: headless on a machine without sandboxing or a GPU, offline.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
# Each component by what its command line holds (the dashboard command becomes Streamlit).
COMPONENTS = {
    "emulator": "backend.cli emulator",
    "stream": "backend.cli stream",
    "producer": "backend.cli produce",
    "dashboard": "streamlit run",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def components(supervisor: psutil.Process) -> dict[str, psutil.Process]:
    """`telcopulse up`'s children by role, from their command lines."""
    found = {}
    for child in supervisor.children():
        try:
            command = " ".join(child.cmdline())
        except psutil.Error:
            continue
        for name, marker in COMPONENTS.items():
            if marker in command:
                found[name] = child
    return found


def tree_memory(process: psutil.Process) -> dict[str, int]:
    """The resident (``rss``), proportional (``pss``) and unreclaimable proportional
    (``pss_anon``) set sizes of ``process`` and its descendants, summed (Linux: one read of
    each process's ``/proc/PID/smaps_rollup``).

    PSS shares each page among the processes that map it. The stream job's Python daemon
    forks a worker per task, and a fork shares nearly all its pages with the daemon: summed
    RSS counts those pages once per live worker, so it jumps with how many workers happen to
    be alive when sampled (a +1 GB spike in one soak). Summed PSS counts them once.

    ``pss_anon`` is PSS without file pages (the kernel's ``Pss_Anon`` plus ``Pss_Shmem``):
    memory only the process can give back. A mapped file's pages are the kernel's page
    cache, dropped under memory pressure and read again when needed: the emulator's
    database (LevelDB maps up to 1,000 of its table files) grows them with the data it
    holds, and the programs' own code is mapped the same way."""
    total: dict = {"rss": 0, "pss": 0, "pss_anon": 0, "members": {}}
    for member in [process, *process.children(recursive=True)]:
        with contextlib.suppress(OSError, psutil.Error):
            sizes = _smaps_rollup(member.pid)
            total["rss"] += sizes["Rss"]
            total["pss"] += sizes["Pss"]
            anonymous = sizes["Pss_Anon"] + sizes["Pss_Shmem"]
            total["pss_anon"] += anonymous
            role = member_role(member, process)
            total["members"][role] = total["members"].get(role, 0) + anonymous
    return total


def member_role(member: psutil.Process, root: psutil.Process) -> str:
    """What a process of a component's tree is, for ``tree_memory``'s split of its
    anonymous PSS: the component's own process (``main``: the stream job's driver, with
    its dedup index), a JVM (``java``), or any other program by name (the stream job's
    Python worker daemon and its forks: ``python``)."""
    if member.pid == root.pid:
        return "main"
    name = member.name()
    return "python" if name.startswith("python") else name


def _smaps_rollup(pid: int) -> dict[str, int]:
    """The byte counts of ``/proc/PID/smaps_rollup`` (Linux 4.14; Pss_Anon from 5.9)."""
    sizes = {}
    with open(f"/proc/{pid}/smaps_rollup") as rollup:
        for line in rollup:
            name, _, rest = line.partition(":")
            fields = rest.split()
            if len(fields) == 2 and fields[1] == "kB":
                sizes[name] = int(fields[0]) * 1024
    return sizes


# The wallboard refreshes the dashboard at its default interval, so a single read may land
# in a page run. Its memory at rest is the least of reads this far apart over one interval.
DEFAULT_REFRESH_SECONDS = Settings.model_fields["refresh_seconds"].default
REST_READ_EVERY = 0.5


def memory_at_rest(
    process: psutil.Process,
    seconds: float,
    *,
    every: float = REST_READ_EVERY,
    read=tree_memory,
    clock=time.monotonic,
    sleep=time.sleep,
) -> dict:
    """The ``tree_memory`` read of ``process`` with the least anonymous PSS, of reads every
    ``every`` seconds for ``seconds``: what it keeps between page runs, not one in flight.

    A page run holds its queries' frames and the page's messages until it ends (beside the
    22:12 UTC soak, blocks in flight moved the dashboard's memory by 10–30 MB). The soak's
    wallboard starts one every refresh interval and each takes about 2 s here, so over one
    interval most reads are between runs.
    """
    began = clock()
    best = read(process)
    while clock() - began < seconds:
        sleep(every)
        current = read(process)
        if current["pss_anon"] < best["pss_anon"]:
            best = current
    return best


ALL_PAGES = ("", "KPIs", "Map", "Pipeline_Health")


def open_pages(
    port: int, paths: tuple[str, ...] = ALL_PAGES, shown: dict | None = None
) -> list[str]:
    """Open each page like a visitor would; return the problems seen (empty when fine).

    ``shown`` gets, per path, the seconds from asking for the page to its title showing."""
    if not CHROMIUM.exists():
        return [f"{CHROMIUM} is missing, so no page was opened"]
    from playwright.sync_api import sync_playwright

    problems = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
        )
        page = browser.new_page()
        for path in paths:
            started = time.monotonic()
            page.goto(f"http://127.0.0.1:{port}/{path}", wait_until="domcontentloaded")
            page.wait_for_selector('[data-testid="stMain"] h1', timeout=60_000)
            if shown is not None:
                shown[path] = round(time.monotonic() - started, 2)
            page.wait_for_timeout(1500)
            if page.locator('[data-testid="stException"]').count():
                problems.append(f"/{path}: an exception is shown")
            elapsed = time.monotonic() - started
            if elapsed > 30:
                problems.append(f"/{path}: took {elapsed:.0f} s to show")
        browser.close()
    return problems


# A sample whose lake read failed: no lag figures (the failure itself is in ``read_error``).
NO_LAG = {"batches": 0, "source_lag_seconds": None, "newest_event_age_seconds": None}


def stream_lag(home: Path, since: float) -> dict:
    """Over the batches committed in the last ``since`` seconds: the worst source lag (newest
    record's arrival to batch start) and how old the newest committed event is now."""
    from datetime import UTC, datetime, timedelta

    from backend.engine import DuckDBEngine
    from backend.queries import committed_batch

    engine = DuckDBEngine(home / "lake")
    batch = committed_batch(engine)
    recent = datetime.now(UTC) - timedelta(seconds=since)
    frame = engine.run(
        "SELECT max(source_lag_seconds) AS lag, max(max_event_time) AS newest, count(*) AS n "
        "FROM ops WHERE ? BETWEEN commit_id AND visible_through AND batch_start >= ?",
        [batch, recent.strftime("%Y-%m-%d %H:%M:%S")],
    )
    lag, newest = frame["lag"].iloc[0], frame["newest"].iloc[0]
    age = None
    if not pd.isna(newest):
        age = (datetime.now(UTC) - newest.to_pydatetime()).total_seconds()
    return {
        "batches": int(frame["n"].iloc[0]),
        "source_lag_seconds": None if pd.isna(lag) else float(lag),
        "newest_event_age_seconds": age,
    }


def committed_events(home: Path) -> int:
    """Records the committed batches read."""
    return committed_counts(home)["records"]


def committed_counts(home: Path) -> dict[str, int]:
    """Records the committed batches read (``records``), and the events they put in
    silver (``silver``): valid, and seen for the first time."""
    from backend.engine import DuckDBEngine
    from backend.queries import committed_batch

    engine = DuckDBEngine(home / "lake")
    batch = committed_batch(engine)
    frame = engine.run(
        "SELECT sum(records_read) AS records, sum(silver_rows) AS silver FROM ops "
        "WHERE ? BETWEEN commit_id AND visible_through",
        [batch],
    )
    row = frame.iloc[0]
    return {
        name: 0 if row[name] is None or math.isnan(row[name]) else int(row[name])
        for name in ("records", "silver")
    }


@contextlib.contextmanager
def running_up(rate: float, **env_extra: str) -> Iterator[tuple[Path, int, subprocess.Popen]]:
    """`telcopulse up --rate RATE` in a throwaway data directory on free ports, once it has
    committed its first events: (data directory, dashboard port, the process). Stopped
    with Ctrl-C afterwards."""
    with tempfile.TemporaryDirectory(prefix="telcopulse-bench-") as tmp:
        home = Path(tmp)
        dashboard_port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("TELCOPULSE_")}
        env.update(
            TELCOPULSE_HOME=str(home),
            TELCOPULSE_EMULATOR_PORT=str(free_port()),
            TELCOPULSE_DASHBOARD_PORT=str(dashboard_port),
            **env_extra,
        )
        up = subprocess.Popen(
            [sys.executable, "-m", "backend.cli", "up", "--rate", f"{rate:g}"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=PROJECT_ROOT,
        )
        try:
            for line in up.stdout:
                if "Ctrl-C stops everything" in line:
                    break
                if "failed" in line or "did not start" in line:
                    raise RuntimeError(line.strip())
            deadline = time.monotonic() + 180
            while committed_events(home) == 0 and time.monotonic() < deadline:
                time.sleep(2)
            yield home, dashboard_port, up
        finally:
            stop_tree(up)


def stop_tree(up: subprocess.Popen, grace: float = 120) -> None:
    """Ctrl-C, as a user stops `telcopulse up`; if it has not stopped within ``grace``
    seconds (a shell running the bench in the background ignores SIGINT for its jobs),
    kill it and every process it started, so no stray stack outlives the bench."""
    members = psutil.Process(up.pid).children(recursive=True)
    up.send_signal(signal.SIGINT)
    try:
        up.wait(timeout=grace)
        return
    except subprocess.TimeoutExpired:
        pass
    for process in [psutil.Process(up.pid), *members]:
        with contextlib.suppress(psutil.Error):
            process.kill()
    up.wait()


class Wallboard:
    """One browser session that keeps a page open and lets it refresh itself for the whole
    run, as a dashboard on an operations wall is used: at the dashboard's default interval
    (``backend.settings``), some 360 page runs an hour, where the soak's visits alone (a new
    browser every sample) give it about a hundred. Added because an AppTest loop had the
    dashboard's memory level off after a few hundred runs; the first soak with it
    (2026-12-06 17:31 UTC, docs/soak-history.md) found the dashboard growing as before, so
    that was not the cause. Runs in a thread of its own with its own event loop
    (``bench.viewers_bench.viewer``, the same session the many-viewers run uses);
    ``result`` is that session's report once the run is over."""

    def __init__(self, port: int, seconds: float, page: str = "KPIs") -> None:
        self.result: dict | None = None
        self._thread = threading.Thread(
            target=self._watch, args=(port, seconds, page), name="wallboard", daemon=True
        )
        self._thread.start()

    def _watch(self, port: int, seconds: float, page: str) -> None:
        from playwright.async_api import Error as BrowserError
        from playwright.async_api import async_playwright

        from bench.viewers_bench import viewer

        async def run() -> dict:
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=str(CHROMIUM),
                    args=CHROMIUM_ARGS,
                )
                url = f"http://127.0.0.1:{port}/{page}"
                try:
                    return await viewer(browser, url, seconds, page, 0)
                finally:
                    await browser.close()

        try:
            self.result = asyncio.run(run())
        except (BrowserError, OSError) as exc:  # a finding of the run, not its end
            failed = str(exc).splitlines()[0][:200]
            self.result = {"page": page, "runs_ms": [], "errors": [f"wallboard failed: {failed}"]}

    def join(self, timeout: float) -> dict:
        self._thread.join(timeout)
        if self.result is None:
            return {"runs_ms": [], "errors": [f"the wallboard did not finish in {timeout:.0f} s"]}
        return self.result


def measure(
    seconds: float, rate: float, log=print, samples_every: float = 30.0, soak: bool = False
) -> dict:
    with running_up(rate) as (home, dashboard_port, up):
        supervisor = psutil.Process(up.pid)
        problems = open_pages(dashboard_port)
        # The soak's wallboard watches from the start to the last sample.
        wallboard = Wallboard(dashboard_port, seconds) if soak and CHROMIUM.exists() else None
        parts = components(supervisor)
        start = {name: tree_memory(p)["rss"] for name, p in parts.items()}
        supervisor_rss = supervisor.memory_info().rss
        timeline = []
        began = time.monotonic()
        # The wallboard's pages run at the dashboard's default interval: with it, the
        # dashboard is read over the last interval before each sample (``memory_at_rest``).
        rest_window = DEFAULT_REFRESH_SECONDS if wallboard else 0.0
        while time.monotonic() - began < seconds:
            left = max(0.0, seconds - (time.monotonic() - began))
            time.sleep(max(0.0, min(samples_every, left) - rest_window))
            dashboard_memory = (
                memory_at_rest(parts["dashboard"], rest_window)
                if rest_window and "dashboard" in parts
                else None
            )
            health = ""
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{dashboard_port}/_stcore/health", timeout=5
                ) as answer:
                    health = answer.read().decode()
            except OSError as exc:
                health = f"no answer: {exc}"
            # Memory first, at rest: the last visit is a sample interval gone, so the
            # dashboard's figure is what it keeps, not a page run's queries and frames still
            # in flight (sampled right after the visit, as before 2026-12-06, those were in
            # its series; ``memory_at_rest`` tells a saved run which it was).
            memory = {name: tree_memory(p) for name, p in parts.items()}
            if dashboard_memory is not None:
                memory["dashboard"] = dashboard_memory
            shown = {}
            if soak:  # a visitor opening the KPIs page meanwhile, in a real browser
                problems += open_pages(dashboard_port, ("KPIs",), shown)
            sample = {
                "seconds": round(time.monotonic() - began),
                "rss": {name: sizes["rss"] for name, sizes in memory.items()},
                "pss": {name: sizes["pss"] for name, sizes in memory.items()},
                "pss_anon": {name: sizes["pss_anon"] for name, sizes in memory.items()},
                # Each component's anonymous PSS by member (``member_role``): where it grew.
                "pss_anon_members": {name: sizes["members"] for name, sizes in memory.items()},
                "dashboard": health,
                "kpis_page_seconds": shown.get("KPIs"),
            }
            try:
                counts = committed_counts(home)
                sample |= {"events": counts["records"], "silver": counts["silver"]}
                sample["lag"] = stream_lag(home, samples_every)
            except QueryError as exc:  # a failed read is a finding, not the end of the run
                sample |= {"events": None, "silver": None, "lag": NO_LAG, "read_error": str(exc)}
            timeline.append(sample)
            total = sum(timeline[-1]["rss"].values()) / 2**20
            log(f"  {timeline[-1]['seconds']} s: {total:.0f} MiB")
        watched = wallboard.join(timeout=180) if wallboard else None
        if watched:
            problems += [f"wallboard: {error}" for error in watched["errors"]]
        problems += open_pages(dashboard_port)
        end = {name: tree_memory(p)["rss"] for name, p in parts.items()}
    return {
        "wallboard": watched,
        "rate": rate,
        "seconds": seconds,
        "samples_every": samples_every,
        "supervisor": supervisor_rss,
        "start": start,
        "end": end,
        "timeline": timeline,
        "page_problems": problems,
        "finished": utc_minute(),
        "memory_at_rest": True,
        "dashboard_rest_window": rest_window,
    }


# The soak's verdict on memory: the trend over its last half hour (the first minutes are
# warm-up: JIT, caches, the first compactions), fitted by least squares (numpy.polyfit).
TREND_SECONDS = 1800
# Below this a slope is flat whatever the noise (a process whose memory never changes).
FLAT_MB_PER_HOUR = 1.0


# The stream job's dedup index (glue_job.dedup.SeenEvents) holds a key per event in silver
# (8 bytes: KEY_DTYPE) until its 24 h horizon passes: for a job's first day, its memory grows
# that much by design. The soak measures that growth apart, from the silver events
# committed, and judges the rest.
DEDUP_BYTES_PER_EVENT = np.dtype(KEY_DTYPE).itemsize
DEDUP_PROCESS = "stream"
# What a trend can be judged on, best first (``tree_memory``), and its name in the report.
MEASURES = {"pss_anon": "anonymous PSS", "pss": "PSS"}


def memory_trends(timeline: list[dict], last_seconds: float = TREND_SECONDS) -> dict[str, dict]:
    """Per process: the slope of its memory over the last ``last_seconds`` of the run (MB per
    hour, MB = 2**20 bytes), its standard error, and the scatter about the line. The memory
    judged is anonymous PSS (``tree_memory``: no file pages, which are the kernel's cache)
    where every sample has it, else PSS, else RSS (runs saved before either);
    ``pss_mb_per_hour`` is the slope of the whole PSS all the same.

    The stream job's dedup index is taken out first where the samples count silver events
    (``DEDUP_BYTES_PER_EVENT``): ``index_mb_per_hour`` says how fast it grew, and the slope
    judged is the rest (``total_mb_per_hour`` is both).

    Flat within noise: the slope is within two standard errors of zero, or an hour of it
    moves the process less than its own scatter about the line does (two standard
    deviations of the residuals), as a garbage-collected heap's sawtooth does, or it is
    below ``FLAT_MB_PER_HOUR``."""
    end = timeline[-1]["seconds"]
    window = [t for t in timeline if t["seconds"] >= end - last_seconds]
    hours = np.array([t["seconds"] for t in window]) / 3600
    measure = next(m for m in (*MEASURES, "rss") if all(m in t for t in window))
    whole = "pss" if all("pss" in t for t in window) else measure
    counted = all(t.get("silver") is not None for t in window)
    trends = {}
    for name in window[0][measure]:
        mb = np.array([t[measure].get(name, 0) for t in window]) / 2**20
        pss = np.array([t[whole].get(name, 0) for t in window]) / 2**20
        index = np.zeros(len(window))
        if name == DEDUP_PROCESS and counted:
            silver = np.array([t["silver"] for t in window], dtype=float)
            index = (silver - silver[0]) * DEDUP_BYTES_PER_EVENT / 2**20
        total = float(np.polyfit(hours, mb, 1)[0])
        index_slope = float(np.polyfit(hours, index, 1)[0])
        mb = mb - index
        (slope, intercept), cov = np.polyfit(hours, mb, 1, cov=True)
        stderr = float(np.sqrt(cov[0][0]))
        scatter = float(np.std(mb - (slope * hours + intercept), ddof=2))
        trends[name] = {
            "pss_mb_per_hour": float(np.polyfit(hours, pss, 1)[0]),
            "total_mb_per_hour": total,
            "index_mb_per_hour": index_slope,
            "slope_mb_per_hour": float(slope),
            "stderr_mb_per_hour": stderr,
            "scatter_mb": scatter,
            "mean_mb": float(mb.mean()),
            "samples": len(window),
            "minutes": round((window[-1]["seconds"] - window[0]["seconds"]) / 60),
            "flat": bool(abs(slope) <= max(2 * stderr, 2 * scatter, FLAT_MB_PER_HOUR)),
            "measure": MEASURES.get(measure, measure.upper()),
            "members_mb_per_hour": _member_slopes(window, name, hours),
        }
    return trends


def _member_slopes(window: list[dict], name: str, hours: np.ndarray) -> dict[str, float]:
    """The slope of each member's anonymous PSS (``member_role``; the dedup index left in
    the stream's ``main``), where every sample split it (runs saved before did not)."""
    if not all(name in t.get("pss_anon_members", {}) for t in window):
        return {}
    roles = sorted({role for t in window for role in t["pss_anon_members"][name]})
    return {
        role: float(
            np.polyfit(
                hours, [t["pss_anon_members"][name].get(role, 0) / 2**20 for t in window], 1
            )[0]
        )
        for role in roles
    }


def soak_verdict(figures: dict) -> list[str]:
    """Why a soak run failed: memory still growing, lag growing, or the dashboard gone."""
    problems = list(figures["page_problems"])
    timeline = figures["timeline"]
    if len(timeline) < 5:
        return [*problems, "too short to judge: fewer than five samples"]
    for name, trend in memory_trends(timeline).items():
        if not trend["flat"]:
            beyond = " beyond its dedup index" if trend.get("index_mb_per_hour") else ""
            problems.append(
                f"{name} memory ({trend['measure']}) still moving{beyond}: "
                f"{trend['slope_mb_per_hour']:+.0f} MB/h "
                f"(± {trend['stderr_mb_per_hour']:.0f}) over the last {trend['minutes']} min"
            )
    lags = [t["lag"]["newest_event_age_seconds"] or 0 for t in timeline]
    early, late = max(lags[: len(lags) // 3] or [0]), max(lags[-(len(lags) // 3) :] or [0])
    if late > 2 * early + 10:
        problems.append(f"falling behind: newest event {early:.0f} s old early, {late:.0f} s late")
    problems += [
        f"dashboard did not answer at {t['seconds']} s: {t['dashboard']}"
        for t in timeline
        if t["dashboard"] != "ok"
    ]
    problems += [
        f"the lake could not be read at {t['seconds']} s: {t['read_error']}"
        for t in timeline
        if t.get("read_error")
    ]
    return problems


def _by_member(slopes: dict[str, float] | None) -> str:
    """``main +61, java +9, python +2`` (MB/h): a component's slope split by process."""
    if not slopes:
        return "—"
    return ", ".join(f"{role} {slope:+.0f}" for role, slope in slopes.items())


def soak_report(figures: dict, problems: list[str]) -> str:
    """The soak's section of docs/reliability.md (bench.long_runs)."""
    start, end, timeline = figures["start"], figures["end"], figures["timeline"]
    trends = memory_trends(timeline)
    window = next(iter(trends.values()))
    lags = [t["lag"]["newest_event_age_seconds"] or 0 for t in timeline]
    source = [t["lag"]["source_lag_seconds"] or 0 for t in timeline]
    third = max(1, len(timeline) // 3)
    pages = [t["kpis_page_seconds"] for t in timeline if t.get("kpis_page_seconds")]
    last_read = next((t for t in reversed(timeline) if t["events"] is not None), timeline[-1])
    lines = [
        f"## Soak: {figures['seconds'] / 60:.0f} minutes at {figures['rate']:,.0f} events/s",
        "",
        f"Measured by `make soak` (`bench.memory_bench`): `telcopulse up --rate "
        f"{figures['rate']:g}` for {figures['seconds'] / 60:.0f} minutes on this machine "
        f"({os.cpu_count()} cores), finished {figures.get('finished') or utc_minute()}. "
        f"Every {figures['samples_every']:g} s it sampled each process's resident memory (the "
        "process and its children: the stream job's JVM and Python workers, say), the lake's "
        "lag, the dashboard's health endpoint, and opened the KPIs page in headless Chromium"
        + (
            ": memory first, while the dashboard is at rest (its last visit "
            f"{figures['samples_every']:g} s gone), so its figure is what it keeps, not a "
            "page run still in flight."
            if figures.get("memory_at_rest")
            else "."
        )
        + (
            f" The wallboard's pages run every {figures['dashboard_rest_window']:g} s, so the "
            f"dashboard's figure is the least of reads every {REST_READ_EVERY:g} s over the "
            f"{figures['dashboard_rest_window']:g} s before each sample (`memory_at_rest`)."
            if figures.get("dashboard_rest_window")
            else ""
        ),
        "",
        f"Memory trend: a least-squares line through each process's {window['measure']} "
        f"over the last {window['minutes']} minutes ({window['samples']} samples)"
        + (
            " (PSS: each page shared by several processes, such as the stream job's forked "
            "Python workers, counted once, where summed RSS counts it in each)"
            if window["measure"] == "PSS"
            else ""
        )
        + (
            " (PSS, each shared page counted once, of the pages only the process can give "
            "back: its heaps and stacks. Mapped files' pages are left out: they are the "
            "kernel's page cache, dropped under memory pressure and read again when needed. "
            "The emulator's LevelDB maps up to 1,000 of its table files, so those grow with "
            "the data it keeps; the whole PSS's slope is shown beside it)"
            if window["measure"] == MEASURES["pss_anon"]
            else ""
        )
        + ". Flat within noise means the slope is within two "
        "standard errors of zero, or an hour of it moves the process less than twice its "
        f"scatter about the line, or it is below {FLAT_MB_PER_HOUR:g} MB/h.",
        "",
        "The stream job's dedup index keeps an 8-byte key per event in silver for 24 hours, "
        "so for a job's first day it grows with the events by design: its growth, counted "
        "from the silver events committed, is shown apart, and the flat verdict is on the "
        "rest. The last column splits each process's slope among the programs it runs: "
        "`main` is the process `telcopulse up` started (the stream job's driver, which "
        "holds the dedup index), `java` the stream job's JVM, `python` its Python workers.",
        "",
        "| process | RSS at start | RSS at end | slope of its whole PSS | slope of its "
        f"{window['measure']}, last {window['minutes']} min | of which the dedup index "
        "| the rest | standard error | scatter | flat | slope by member |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
        *[
            f"| {name} | {start[name] / 2**20:.0f} MB | {end.get(name, 0) / 2**20:.0f} MB | "
            f"{t.get('pss_mb_per_hour', t['slope_mb_per_hour']):+.1f} MB/h | "
            f"{t.get('total_mb_per_hour', t['slope_mb_per_hour']):+.1f} MB/h | "
            f"{t.get('index_mb_per_hour', 0.0):+.1f} MB/h | "
            f"{t['slope_mb_per_hour']:+.1f} MB/h | {t['stderr_mb_per_hour']:.1f} MB/h | "
            f"{t['scatter_mb']:.1f} MB | {'yes' if t['flat'] else '**no**'} | "
            f"{_by_member(t.get('members_mb_per_hour'))} |"
            for name, t in sorted(trends.items())
        ],
        "",
        f"- Events committed: {last_read['events']:,}, "
        f"{last_read['events'] / max(1, last_read['seconds']):,.0f} per second on average.",
        f"- Lag: the newest committed event was at most {max(lags[:third]):.1f} s old in the "
        f"first third and {max(lags[-third:]):.1f} s in the last; the worst source lag (a "
        f"record's arrival to its batch's start) was {max(source):.1f} s.",
        f"- Dashboard: its health endpoint answered {sum(t['dashboard'] == 'ok' for t in timeline)}"
        f" of {len(timeline)} times; the KPIs page showed in {np.median(pages):.1f} s "
        f"(median), {max(pages):.1f} s at worst."
        if pages
        else "- Dashboard: no page was timed.",
        *_wallboard_lines(figures.get("wallboard")),
        "",
        "Result: " + ("**pass**." if not problems else "**fail**: " + "; ".join(problems)),
        "",
        "<details><summary>Every sample</summary>",
        "",
        "| time | total RSS | total PSS | events committed | worst source lag "
        "| newest event age | dashboard health | KPIs page shown in |",
        "|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for t in timeline:
        lag = t["lag"]
        lines.append(
            f"| {t['seconds']} s | {sum(t['rss'].values()) / 2**20:.0f} MB | "
            f"{_megabytes(t.get('pss'))} | {_count(t['events'])} | "
            f"{lag['source_lag_seconds'] or 0:.1f} s | "
            f"{lag['newest_event_age_seconds'] or 0:.1f} s | {t['dashboard']} | "
            f"{_seconds(t.get('kpis_page_seconds'))} |"
        )
    lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


def _wallboard_lines(watched: dict | None) -> list[str]:
    """The wallboard's line of the soak's report (``Wallboard``); none for a run without."""
    if watched is None:
        return []
    runs = watched.get("runs_ms") or []
    drawn = (
        f", each drawn in {np.percentile(runs, 50) / 1000:.1f} s (median), "
        f"{np.percentile(runs, 95) / 1000:.1f} s at p95"
        if runs
        else ""
    )
    errors = watched.get("errors") or []
    return [
        f"- Wallboard: one browser session kept the {watched.get('page', 'KPIs')} page open "
        f"for the whole run and it refreshed itself {len(runs):,} times{drawn} "
        "(the dashboard's default interval, as on an operations wall); "
        + (f"{len(errors)} errors (in the result)." if errors else "no errors.")
    ]


def _megabytes(by_process: dict[str, int] | None) -> str:
    return "—" if by_process is None else f"{sum(by_process.values()) / 2**20:.0f} MB"


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} s"


def _count(value: int | None) -> str:
    return "read failed" if value is None else f"{value:,}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--seconds", type=float, default=120)
    length.add_argument("--minutes", type=float, help="run length in minutes (the soak's unit)")
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--output", type=output_file)
    parser.add_argument(
        "--soak",
        action="store_true",
        help=f"judge the run as a soak test and write its section of {RELIABILITY_MD.name}",
    )
    parser.add_argument(
        "--judge",
        type=Path,
        metavar="JSON",
        help="measure nothing: judge a run saved with --output again (with --soak)",
    )
    args = parser.parse_args(argv)
    seconds = args.minutes * 60 if args.minutes is not None else args.seconds
    if args.judge:
        figures = json.loads(args.judge.read_text())
    else:
        figures = measure(
            seconds, args.rate, log=lambda m: print(m, file=sys.stderr), soak=args.soak
        )
    text = json.dumps(figures, indent=1)
    if args.output:
        args.output.write_text(text)
    print(text)
    if args.soak:
        problems = soak_verdict(figures)
        replace_section("soak", soak_report(figures, problems))
        print(
            f"soak: {'pass' if not problems else 'FAIL: ' + '; '.join(problems)}", file=sys.stderr
        )
        return 1 if problems else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
