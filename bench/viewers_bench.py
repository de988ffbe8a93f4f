"""Many viewers (bench): 20 browser sessions watching `telcopulse up` auto-refresh at once.

Starts `telcopulse up` in a throwaway data directory with the dashboard's refresh
interval at 5 s, then opens ``--viewers`` sessions in headless Chromium (Debian's
``/usr/bin/chromium`` through Playwright, one browser context each, loopback only), spread
over the four pages. Each session keeps its page open for ``--minutes`` while the page
refreshes itself, and every refresh is timed twice:

- **answered**: on the session's websocket, from the browser's rerun request (Streamlit's
  ``BackMsg.rerun_script``) to the server's ``ForwardMsg.script_finished``: the dashboard's
  own time, queueing behind the other sessions included. The browsers reach the dashboard
  through a relay on loopback (``bench.wire_relay``, a process of its own at normal
  priority) that times the frames as they pass, so how busy this machine's browsers are
  does not enter the figure. This is the figure the target is judged on: a real viewer's
  browser runs on the viewer's machine.
- **drawn**: in the page, from Streamlit marking the script as running
  (``data-test-script-state``) to marking it done, which adds this machine's browser
  drawing the page; here 20 renderers share the machine's cores with the whole stack.

The browsers are the load, not what is measured, so they run at the lowest CPU priority
(nice 19) and the dashboard and the stream job come first, as they would on a server of
their own: the browsers' session as a whole (Linux shares the CPU between sessions before
nice values count; see ``CpuMeter._lower``), and within it the processes that draw the
pages. The report says how much CPU each side took.

Errors are whatever a viewer would see or the browser would log: an exception box on
the page, an uncaught script error, a console error (the basemap's tiles excepted, which
an offline machine cannot fetch), or a lost connection. Writes its section of
docs/reliability.md (``bench.long_runs``).
Usage:

    .venv/bin/python -m bench.viewers_bench [--viewers 20] [--minutes 5] [--rate 200]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import psutil

from backend.stack import dashboard_ready
from bench import output_file, utc_minute
from bench.long_runs import RELIABILITY_MD, replace_section
from bench.memory_bench import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PROJECT_ROOT,
    components,
    free_port,
    running_up,
    stop_tree,
)

PAGES = ("", "KPIs", "Map", "Pipeline_Health")
REFRESH_SECONDS = 5
TARGET_P95_SECONDS = 2.0
# Viewers arrive this far apart (20 within 10 s), then all watch at once.
ARRIVAL_SECONDS = 0.5
# How long a first load may take at each of its three steps (the page's HTML and scripts,
# its title, its first run drawn) before the session counts as failed; the first load's time
# is reported either way. One figure for all three: the first step had Playwright's default
# 30 s while the other two had 120 s, and on a starved browser it was the step that failed.
LOAD_STEP_MS = 120_000
# Records each run of the page: Streamlit sets data-test-script-state on its app element
# ("running", "rerunRequested", ... then "notRunning" when the page is drawn).
TIMER = """
(() => {
  const runs = [];
  window.__telcopulseRuns = runs;
  let started = null;
  let state = null;
  const check = () => {
    const app = document.querySelector("[data-test-script-state]");
    if (!app) return;
    const now = app.getAttribute("data-test-script-state");
    if (now === state) return;
    state = now;
    if (now === "notRunning") {
      if (started !== null) runs.push({ms: performance.now() - started, at: Date.now()});
      started = null;
    } else if (now !== "initial" && started === null) {
      started = performance.now();
    }
  };
  new MutationObserver(check).observe(document, {
    subtree: true, childList: true, attributes: true,
    attributeFilter: ["data-test-script-state"],
  });
})();
"""
CONNECTION_STATE = (
    "document.querySelector('[data-test-connection-state]')"
    "?.getAttribute('data-test-connection-state') ?? null"
)
# What an offline machine cannot load, and says so in the console: CARTO's basemap tiles
# and styles, and Streamlit's hosted metrics config.
OFFLINE_NOISE = ("basemaps.cartocdn.com", "Failed to fetch", "ERR_NAME_NOT_RESOLVED")
# Opened at a page's own address (/KPIs), Streamlit's frontend first looks for its server
# under that path and gets a 404 for each of these before it tries the root, which answers.
BASE_PATH_PROBES = ("/_stcore/health", "/_stcore/host-config")


class CpuMeter:
    """CPU seconds of process groups while the viewers watch, sampled every few seconds
    (the newest total of each process that ever ran; one that exits between two samples
    loses at most that gap). ``browsers`` are every Chromium process: their session is kept
    at the lowest priority, and within it the ones that draw (``DRAWING``) too."""

    def __init__(self, groups: dict[str, psutil.Process]) -> None:
        self.groups = groups
        self.seconds: dict[str, dict[int, float]] = {name: {} for name in [*groups, "browsers"]}
        self._lowered: set[int] = set()  # the browsers' sessions (``_lower``)
        self.at_start = self._read()

    def _members(self) -> dict[str, list[psutil.Process]]:
        """Each group's processes now (a process may exit while they are listed)."""
        members: dict[str, list[psutil.Process]] = {}
        for name, process in self.groups.items():
            with contextlib.suppress(psutil.Error):
                members[name] = [process, *process.children(recursive=True)]
        members["browsers"] = [
            child for child in psutil.Process().children(recursive=True) if _is_browser(child)
        ]
        return members

    def _lower(self, process: psutil.Process) -> None:
        """The browser's session, then its drawing processes, at the lowest priority.

        Linux groups the CPU by session before it looks at nice values (autogroups,
        sched(7): "under group scheduling, a thread's nice value has an effect for
        scheduling decisions only relative to other threads in the same task group").
        Playwright starts Chromium in a session of its own, as `telcopulse up` starts
        each component, so a renderer's nice 19 alone left all the browsers one equal
        share beside the dashboard's and the stream job's: they took two thirds of the CPU
        (``make viewers`` at 05:50 UTC on 2026-12-06: 422 of the 611 CPU-seconds the
        browsers, the relay and the stack used). The session's own nice value
        (``/proc/PID/autogroup``) is what ranks it against theirs.
        """
        session = os.getsid(process.pid)
        if session not in self._lowered and session != os.getsid(0):  # never the bench's own
            self._lowered.add(session)
            with contextlib.suppress(OSError):
                Path(f"/proc/{process.pid}/autogroup").write_text(str(LOWEST_PRIORITY))
        if _draws(process) and process.nice() < LOWEST_PRIORITY:
            process.nice(LOWEST_PRIORITY)

    def _read(self) -> dict[str, dict[int, float]]:
        totals: dict[str, dict[int, float]] = {}
        for name, processes in self._members().items():
            totals[name] = {}
            for process in processes:
                try:
                    if name == "browsers":
                        self._lower(process)
                    times = process.cpu_times()
                    totals[name][process.pid] = times.user + times.system
                except psutil.Error:
                    continue
        return totals

    def sample(self) -> None:
        for name, totals in self._read().items():
            self.seconds.setdefault(name, {}).update(totals)

    def used(self) -> dict[str, float]:
        """CPU seconds each group used since the meter started."""
        return {
            name: sum(t - self.at_start.get(name, {}).get(pid, 0.0) for pid, t in totals.items())
            for name, totals in self.seconds.items()
        }


LOWEST_PRIORITY = 19
# The processes that draw the pages: each page's renderer and the GPU process, which rasters
# in software here (deck.gl's WebGL too). Within the browsers' session, the browser process
# and its network service stay ahead of them: they carry the websocket frames.
DRAWING = ("--type=renderer", "--type=gpu-process")


def _draws(process: psutil.Process) -> bool:
    """Whether ``process`` draws pages (its caller skips one that has exited)."""
    return any(kind in process.cmdline() for kind in DRAWING)


def _is_browser(process: psutil.Process) -> bool:
    try:
        return process.name().startswith("chrom")
    except psutil.Error:  # exited since it was listed
        return False


def is_noise(text: str, url: str) -> bool:
    """A console error no viewer would notice: see OFFLINE_NOISE and BASE_PATH_PROBES."""
    if any(noise in text for noise in OFFLINE_NOISE):
        return True
    path = "/" + url.split("://", 1)[-1].split("/", 1)[-1]
    return "404" in text and path.endswith(BASE_PATH_PROBES) and path.count("/") > 2


async def viewer(browser, url: str, seconds: float, name: str, delay: float) -> dict:
    """One session: after ``delay``, open ``url``, watch it refresh for ``seconds``, report."""
    await asyncio.sleep(delay)
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page = await context.new_page()
    page.on("pageerror", lambda exc: errors.append(f"{name}: script error: {exc}"))
    page.on(
        "console",
        lambda msg: (
            errors.append(f"{name}: console: {msg.text[:200]} ({msg.location.get('url')})")
            if msg.type == "error" and not is_noise(msg.text, msg.location.get("url", ""))
            else None
        ),
    )
    await page.add_init_script(TIMER)
    opened = time.monotonic()
    await page.goto(url, wait_until="domcontentloaded", timeout=LOAD_STEP_MS)
    await page.wait_for_selector('[data-testid="stMain"] h1', timeout=LOAD_STEP_MS)
    await page.wait_for_selector('[data-test-script-state="notRunning"]', timeout=LOAD_STEP_MS)
    first_load = time.monotonic() - opened
    checks = 0
    while time.monotonic() - opened < seconds:
        await asyncio.sleep(min(15, max(0.0, seconds - (time.monotonic() - opened))))
        checks += 1
        if await page.locator('[data-testid="stException"]').count():
            errors.append(f"{name}: an exception is shown")
        # Read at once, not waited for: a probe of the bench is not what a viewer waits on.
        state = await page.evaluate(CONNECTION_STATE)
        if state not in (None, "CONNECTED"):
            errors.append(f"{name}: connection {state}")
    runs = (await page.evaluate("window.__telcopulseRuns"))[1:]  # after the first load
    await context.close()
    return {
        "page": name,
        "first_load_seconds": first_load,
        "runs_ms": [r["ms"] for r in runs],
        "checks": checks,
        "errors": errors,
    }


async def watch(port: int, viewers: int, seconds: float, meter: CpuMeter) -> list[dict]:
    from playwright.async_api import async_playwright

    async def keep_sampling() -> None:
        while True:
            meter.sample()
            await asyncio.sleep(2)

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
        )
        sampling = asyncio.create_task(keep_sampling())
        sessions = [
            viewer(
                browser,
                f"http://127.0.0.1:{port}/{PAGES[i % len(PAGES)]}",
                seconds,
                PAGES[i % len(PAGES)] or "Home",
                delay=i * ARRIVAL_SECONDS,
            )
            for i in range(viewers)
        ]
        results = await asyncio.gather(*sessions, return_exceptions=True)
        sampling.cancel()
        meter.sample()
        await browser.close()
    return [
        r
        if isinstance(r, dict)
        else {
            "page": PAGES[i % len(PAGES)] or "Home",
            "runs_ms": [],
            "errors": [f"session failed: {str(r).splitlines()[0][:200]}"],
        }
        for i, r in enumerate(results)
    ]


def measure(viewers: int, minutes: float, rate: float, log=print) -> dict:
    if not CHROMIUM.exists():
        raise SystemExit(f"{CHROMIUM} is missing: install Chromium there to run the viewers")
    with (
        running_up(rate, TELCOPULSE_REFRESH_SECONDS=str(REFRESH_SECONDS)) as (home, port, up),
        relayed(port, home / "answered.jsonl") as (relay_port, relay),
    ):
        log(f"{viewers} viewers for {minutes:g} min on http://127.0.0.1:{relay_port}")
        meter = CpuMeter(components(psutil.Process(up.pid)) | {"relay": relay})
        started = time.monotonic()
        sessions = asyncio.run(watch(relay_port, viewers, minutes * 60, meter))
        took = time.monotonic() - started
        answered = read_answered(home / "answered.jsonl")
    return {
        "viewers": viewers,
        "minutes": minutes,
        "rate": rate,
        "refresh_seconds": REFRESH_SECONDS,
        "wall_seconds": took,
        "cores": os.cpu_count(),
        "cpu_seconds": meter.used(),
        "finished": utc_minute(),
        "sessions": sessions,
        "answered": answered,
    }


def read_answered(path: Path) -> list[dict]:
    """The refreshes the relay timed (``bench.wire_relay``), named as the sessions are."""
    answered = [json.loads(line) for line in path.read_text().splitlines()]
    return [{"page": a["page"] or "Home", "seconds": a["seconds"]} for a in answered]


@contextlib.contextmanager
def relayed(port: int, runs: Path):
    """``bench.wire_relay`` in front of the dashboard on ``port``, writing to ``runs``, once
    it answers: (its port, its process)."""
    relay_port = free_port()
    relay = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.wire_relay",
            "--upstream",
            str(port),
            "--port",
            str(relay_port),
            "--runs",
            str(runs),
        ],
        cwd=PROJECT_ROOT,
    )
    try:
        deadline = time.monotonic() + 30
        while not dashboard_ready(relay_port):  # the dashboard's health, through the relay
            if relay.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the viewers' relay did not start")
            time.sleep(0.2)
        yield relay_port, psutil.Process(relay.pid)
    finally:
        stop_tree(relay, grace=10)


def _percentiles(seconds: list[float]) -> dict:
    if not seconds:
        return {"runs": 0, "p50": float("inf"), "p95": float("inf"), "max": float("inf")}
    return {
        "runs": len(seconds),
        "p50": float(np.percentile(seconds, 50)),
        "p95": float(np.percentile(seconds, 95)),
        "max": max(seconds),
    }


def summary(figures: dict) -> dict:
    """Per measure (``answered``, ``drawn``): runs, p50, p95 and worst, overall and per page
    (seconds). Passed: no error and ``answered`` p95 within the target."""
    sessions = figures["sessions"]
    timed = {
        "answered": [(a["page"], a["seconds"]) for a in figures["answered"]],
        "drawn": [(s["page"], ms / 1000) for s in sessions for ms in s.get("runs_ms", [])],
    }
    result: dict = {}
    for measure, runs in timed.items():
        per_page: dict[str, list[float]] = {}
        for page, seconds in runs:
            per_page.setdefault(page, []).append(seconds)
        result[measure] = _percentiles([seconds for _, seconds in runs])
        result[measure]["per_page"] = {
            page: _percentiles(times) for page, times in sorted(per_page.items())
        }
    first = [s["first_load_seconds"] for s in sessions if "first_load_seconds" in s]
    errors = [e for s in sessions for e in s["errors"]]
    result |= {
        "first_load_p95": float(np.percentile(first, 95)) if first else float("inf"),
        "errors": errors,
        "expected_runs": round(
            len(sessions) * figures["minutes"] * 60 / figures["refresh_seconds"]
        ),
        "passed": not errors and result["answered"]["p95"] <= TARGET_P95_SECONDS,
    }
    return result


def seconds_text(value: float, digits: int = 2) -> str:
    """A time for the report: "none" when nothing was timed (the summary's infinity)."""
    return "none" if math.isinf(value) else f"{value:.{digits}f} s"


def errors_text(errors: list[str], shown: int = 10) -> str:
    """Distinct errors, the most frequent first, each with its count when it repeats."""
    counted = Counter(errors).most_common()
    text = "; ".join(f"{n} × {error}" if n > 1 else error for error, n in counted[:shown])
    return text + (f"; and {len(counted) - shown} other kinds" if len(counted) > shown else "")


def report(figures: dict) -> str:
    """The many-viewers section of docs/reliability.md."""
    s = summary(figures)
    answered, drawn = s["answered"], s["drawn"]
    verdict = "**pass**" if s["passed"] else "**fail**"
    cpu = figures.get("cpu_seconds", {})
    cpu_line = (
        "- CPU while they watched ("
        + f"{figures['wall_seconds']:.0f} s × {figures['cores']} cores = "
        + f"{figures['wall_seconds'] * figures['cores']:,.0f} core-seconds): "
        + ", ".join(f"{name} {seconds:,.0f} s" for name, seconds in sorted(cpu.items()))
        + "."
        if cpu
        else "- CPU: not measured."
    )
    lines = [
        f"## Many viewers: {figures['viewers']} sessions refreshing every "
        f"{figures['refresh_seconds']} s",
        "",
        f"Measured by `make viewers` (`bench.viewers_bench`, also a phase of `make bench`), "
        f"finished {figures.get('finished') or utc_minute()} on this machine "
        f"({figures['cores']} cores, shared by the stack and the browser): `telcopulse up "
        f"--rate {figures['rate']:g}`, {figures['viewers']} headless Chromium sessions on "
        f"loopback (one browser context each, spread evenly over the four pages, arriving "
        f"{ARRIVAL_SECONDS:g} s apart), each open for {figures['minutes']:g} minutes while the "
        "page refreshed itself. Every refresh is timed twice: **answered**, on the "
        "session's websocket from the browser asking for the rerun to the server saying the "
        "run finished (the dashboard's own time, queueing behind the other sessions "
        "included; the target is judged on it), and **drawn**, in the page from Streamlit "
        "marking the script as running to marking it done, which adds this machine's "
        "browser drawing it. Answered is timed by a relay on loopback between the browsers and "
        "the dashboard (`bench.wire_relay`, a process of its own at normal priority) as "
        "each frame passes it. The browsers are the load, not what is measured: the "
        "browsers' session runs at the lowest CPU priority (its autogroup at nice 19: Linux "
        "shares the CPU between sessions before it looks at nice values, and Playwright "
        "starts Chromium in a session of its own), and within it so do the processes that "
        "draw the pages (renderers and the software GPU process), so the dashboard and the "
        "stream job come first.",
        "",
        "| page | refreshes | answered p50 | answered p95 | drawn p95 |",
        "|---|---:|---:|---:|---:|",
        *[
            f"| {page} | {t['runs']:,} | {seconds_text(t['p50'])} | {seconds_text(t['p95'])} | "
            f"{seconds_text(drawn['per_page'].get(page, {}).get('p95', math.inf))} |"
            for page, t in answered["per_page"].items()
        ],
        f"| **all** | **{answered['runs']:,}** | **{seconds_text(answered['p50'])}** | "
        f"**{seconds_text(answered['p95'])}** | **{seconds_text(drawn['p95'])}** |",
        "",
        f"- Answered: p50 {seconds_text(answered['p50'])}, p95 "
        f"{seconds_text(answered['p95'])}, worst {seconds_text(answered['max'])} "
        f"(target: p95 ≤ {TARGET_P95_SECONDS:g} s). "
        f"{answered['runs']:,} refreshes against the {s['expected_runs']:,} a "
        f"{figures['refresh_seconds']} s interval asks for.",
        f"- Drawn in this machine's browser: p50 {seconds_text(drawn['p50'])}, p95 "
        f"{seconds_text(drawn['p95'])}, worst {seconds_text(drawn['max'])}.",
        cpu_line,
        f"- First load of a page (navigation to drawn): p95 "
        f"{seconds_text(s['first_load_p95'], 1)}.",
        f"- Errors: {len(s['errors'])}"
        + (
            ": " + errors_text(s["errors"])
            if s["errors"]
            else " (no exception box, script "
            "error, console error or lost connection in any session)."
        ),
        "",
        f"Result: {verdict}.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--viewers", type=int, default=20)
    parser.add_argument("--minutes", type=float, default=5)
    parser.add_argument("--rate", type=float, default=200, help="events/s `telcopulse up` sends")
    parser.add_argument("--output", type=output_file, help="also write every figure here as JSON")
    parser.add_argument(
        "--no-report", action="store_true", help=f"leave {RELIABILITY_MD.name} as it is"
    )
    args = parser.parse_args(argv)
    figures = measure(
        args.viewers, args.minutes, args.rate, log=lambda m: print(m, file=sys.stderr)
    )
    if args.output:
        args.output.write_text(json.dumps(figures, indent=1))
    s = summary(figures)
    if not args.no_report:
        replace_section("viewers", report(figures))
    print(
        f"viewers: {s['answered']['runs']} refreshes answered, p95 {s['answered']['p95']:.2f} s "
        f"(drawn p95 {s['drawn']['p95']:.2f} s), {len(s['errors'])} errors: "
        f"{'pass' if s['passed'] else 'FAIL'}",
        file=sys.stderr,
    )
    return 0 if s["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
