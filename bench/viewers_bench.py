"""Many viewers (bench): 20 browser sessions watching `telcopulse up` auto-refresh at once.

Starts `telcopulse up` in a throwaway data directory with the dashboard's refresh
interval at 5 s, then opens ``--viewers`` sessions in headless Chromium (Debian's
``/usr/bin/chromium`` through Playwright, one browser context each, loopback only), spread
over the four pages. Each session keeps its page open for ``--minutes`` while the page
refreshes itself, and a script in the page times every run of the page: from the moment
Streamlit marks the script as running (``data-test-script-state``) to the moment it
marks it done, which is what a viewer waits for. Errors are whatever a viewer would see
or the browser would log: an exception box on the page, an uncaught script error, a
console error (the basemap's tiles excepted, which an offline machine cannot fetch), or
a lost connection. Writes its section of docs/reliability.md (``bench.long_runs``).
Usage:

    .venv/bin/python -m bench.viewers_bench [--viewers 20] [--minutes 5] [--rate 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from bench.long_runs import RELIABILITY_MD, replace_section
from bench.memory_bench import CHROMIUM, running_up

PAGES = ("", "KPIs", "Map", "Pipeline_Health")
REFRESH_SECONDS = 5
TARGET_P95_SECONDS = 2.0
# Viewers arrive this far apart (20 within 10 s), then all watch at once.
ARRIVAL_SECONDS = 0.5
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
# What an offline machine cannot load, and says so in the console: CARTO's basemap tiles
# and styles, and Streamlit's hosted metrics config.
OFFLINE_NOISE = ("basemaps.cartocdn.com", "Failed to fetch", "ERR_NAME_NOT_RESOLVED")
# Opened at a page's own address (/KPIs), Streamlit's frontend first looks for its server
# under that path and gets a 404 for each of these before it tries the root, which answers.
BASE_PATH_PROBES = ("/_stcore/health", "/_stcore/host-config")


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
    await page.goto(url, wait_until="domcontentloaded")
    await page.wait_for_selector('[data-testid="stMain"] h1', timeout=120_000)
    await page.wait_for_selector('[data-test-script-state="notRunning"]', timeout=120_000)
    first_load = time.monotonic() - opened
    checks = 0
    while time.monotonic() - opened < seconds:
        await asyncio.sleep(min(15, max(0.0, seconds - (time.monotonic() - opened))))
        checks += 1
        if await page.locator('[data-testid="stException"]').count():
            errors.append(f"{name}: an exception is shown")
        state = await page.get_attribute(
            "[data-test-connection-state]", "data-test-connection-state"
        )
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


async def watch(port: int, viewers: int, seconds: float) -> list[dict]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
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
    with running_up(rate, TELCOPULSE_REFRESH_SECONDS=str(REFRESH_SECONDS)) as (_, port, _up):
        log(f"{viewers} viewers for {minutes:g} min on http://127.0.0.1:{port}")
        started = time.monotonic()
        sessions = asyncio.run(watch(port, viewers, minutes * 60))
        took = time.monotonic() - started
    return {
        "viewers": viewers,
        "minutes": minutes,
        "rate": rate,
        "refresh_seconds": REFRESH_SECONDS,
        "wall_seconds": took,
        "cores": os.cpu_count(),
        "sessions": sessions,
    }


def summary(figures: dict) -> dict:
    sessions = figures["sessions"]
    runs = [ms / 1000 for s in sessions for ms in s["runs_ms"]]
    per_page = {}
    for s in sessions:
        per_page.setdefault(s["page"], []).extend(ms / 1000 for ms in s["runs_ms"])
    first = [s["first_load_seconds"] for s in sessions if "first_load_seconds" in s]
    errors = [e for s in sessions for e in s["errors"]]
    p95 = float(np.percentile(runs, 95)) if runs else float("inf")
    return {
        "runs": len(runs),
        "p50": float(np.percentile(runs, 50)) if runs else float("inf"),
        "p95": p95,
        "max": max(runs, default=float("inf")),
        "per_page": {
            page: (len(v), float(np.percentile(v, 95)) if v else float("inf"))
            for page, v in per_page.items()
        },
        "first_load_p95": float(np.percentile(first, 95)) if first else float("inf"),
        "errors": errors,
        "expected_runs": round(
            len(sessions) * figures["minutes"] * 60 / figures["refresh_seconds"]
        ),
        "passed": not errors and p95 <= TARGET_P95_SECONDS,
    }


def report(figures: dict) -> str:
    """The many-viewers section of docs/reliability.md."""
    s = summary(figures)
    verdict = "**pass**" if s["passed"] else "**fail**"
    lines = [
        f"## Many viewers: {figures['viewers']} sessions refreshing every "
        f"{figures['refresh_seconds']} s",
        "",
        f"Measured by `make viewers` (`bench.viewers_bench`, also a phase of `make bench`), "
        f"finished {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on this machine "
        f"({figures['cores']} cores, shared by the stack and the browser): `telcopulse up "
        f"--rate {figures['rate']:g}`, {figures['viewers']} headless Chromium sessions on "
        f"loopback (one browser context each, spread evenly over the four pages, arriving "
        f"{ARRIVAL_SECONDS:g} s apart), each open for {figures['minutes']:g} minutes while the "
        "page refreshed itself. A page run is "
        "timed in the browser, from Streamlit marking the script as running to marking it "
        "done.",
        "",
        "| page | runs | p95 |",
        "|---|---:|---:|",
        *[f"| {page} | {n:,} | {p95:.2f} s |" for page, (n, p95) in sorted(s["per_page"].items())],
        f"| **all** | **{s['runs']:,}** | **{s['p95']:.2f} s** |",
        "",
        f"- Page runs: p50 {s['p50']:.2f} s, p95 {s['p95']:.2f} s, worst {s['max']:.2f} s "
        f"(target: p95 ≤ {TARGET_P95_SECONDS:g} s). {s['runs']:,} runs against the "
        f"{s['expected_runs']:,} a {figures['refresh_seconds']} s interval asks for.",
        f"- First load of a page (navigation to drawn): p95 {s['first_load_p95']:.1f} s.",
        f"- Errors: {len(s['errors'])}"
        + (
            ": " + "; ".join(s["errors"][:10])
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
    parser.add_argument("--output", type=Path, help="also write every figure here as JSON")
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
        f"viewers: {s['runs']} page runs, p95 {s['p95']:.2f} s, {len(s['errors'])} errors: "
        f"{'pass' if s['passed'] else 'FAIL'}",
        file=sys.stderr,
    )
    return 0 if s["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
