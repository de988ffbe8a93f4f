"""Dashboard page benchmark (bench): each page's server-side run time over a gold history.

Points the app at a lake (by default the one ``bench/history.py`` wrote), runs
every page headlessly with ``streamlit.testing.v1.AppTest`` and times whole
script runs:

- cold: ``st.cache_data`` and ``st.cache_resource`` cleared (so a new DuckDB
  engine too), as for the first visitor after a server start;
- refresh: ``st.cache_data`` cleared, engine kept, as on every auto-refresh tick;
- warm: plain reruns that hit the caches, as on a widget click.

Every query the pages send is timed at ``DuckDBEngine.run``. Prints a Markdown
report and writes it to ``bench/results-pages.md``. Usage:

    .venv/bin/python bench/pages_bench.py [--home .telcopulse/bench] [--range "1 h" --range "7 d"]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
HOME_PAGE = "Home.py"
RESULTS = PROJECT_ROOT / "bench" / "results-pages.md"
BUDGET_MS = 500.0
TIMEOUT_S = 300


@dataclass
class PageResult:
    page: str
    preset: str
    cold_ms: list[float] = field(default_factory=list)
    refresh_ms: list[float] = field(default_factory=list)
    warm_ms: list[float] = field(default_factory=list)
    query_ms: list[float] = field(default_factory=list)  # per refresh run, summed
    problem: str | None = None


class QueryTimer:
    """Wraps ``DuckDBEngine.run`` to time each query by its name in ``backend/sql``."""

    def __init__(self) -> None:
        from backend.queries import load_sql, query_names

        self.names = {load_sql(name): name for name in query_names()}
        self.calls: list[tuple[str, float]] = []
        self.by_query: dict[str, list[float]] = defaultdict(list)

    def install(self) -> None:
        from backend.engine import DuckDBEngine

        original = DuckDBEngine.run
        timer = self

        def timed_run(engine, sql, params=()):
            started = time.perf_counter()
            try:
                return original(engine, sql, params)
            finally:
                timer.calls.append(
                    (timer.names.get(sql, "(unnamed)"), time.perf_counter() - started)
                )

        DuckDBEngine.run = timed_run

    def take(self) -> list[tuple[str, float]]:
        calls, self.calls = self.calls, []
        return calls


def app_pages() -> list[str]:
    """Home and every script in pages/, in the order Streamlit lists them."""
    from streamlit.source_util import page_sort_key

    scripts = sorted((PROJECT_ROOT / "pages").glob("*.py"), key=page_sort_key)
    return [HOME_PAGE, *(f"pages/{p.name}" for p in scripts)]


def clear_caches(*, engine: bool) -> None:
    import streamlit as st

    st.cache_data.clear()
    if engine:
        st.cache_resource.clear()


def timed_run(at) -> float:
    started = time.perf_counter()
    at.run()
    return (time.perf_counter() - started) * 1000


def failure(at) -> str | None:
    if at.exception:
        return "exception: " + " ".join(str(at.exception[0].value).split())[:200]
    if at.error:
        return "error: " + " ".join(str(at.error[0].value).split())[:200]
    return None


def measure_page(page: str, preset: str, timer: QueryTimer, *, cold: int, runs: int) -> PageResult:
    from streamlit.testing.v1 import AppTest

    from backend.dashboard_data import DEFAULT_PRESET

    result = PageResult(page, preset)
    at = AppTest.from_file(str(PROJECT_ROOT / HOME_PAGE), default_timeout=TIMEOUT_S)
    if page != HOME_PAGE:
        at.switch_page(page)
    at.run()  # set-up run, not timed
    if preset != DEFAULT_PRESET:
        at.sidebar.segmented_control(key="tp_range").set_value(preset).run()
    result.problem = failure(at)
    if result.problem:
        return result
    for _ in range(cold):
        clear_caches(engine=True)
        result.cold_ms.append(timed_run(at))
    timer.take()
    for _ in range(runs):
        clear_caches(engine=False)
        result.refresh_ms.append(timed_run(at))
        calls = timer.take()
        result.query_ms.append(sum(seconds for _, seconds in calls) * 1000)
        for name, seconds in calls:
            timer.by_query[f"{name} · {preset}"].append(seconds * 1000)
    for _ in range(runs):
        result.warm_ms.append(timed_run(at))
    timer.take()
    result.problem = failure(at)
    return result


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def describe_machine() -> str:
    memory = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f", {int(line.split()[1]) / 1024**2:.0f} GiB memory"
    except OSError:
        pass
    load = ""
    if hasattr(os, "getloadavg"):
        load = f", load average {os.getloadavg()[0]:.1f} at the end (the CPU may be shared)"
    return f"{os.cpu_count()} cores{memory}, {platform.system()} {platform.machine()}{load}"


def describe_lake(home: Path) -> str:
    from history import MARKER

    marker = home / MARKER
    try:
        info = json.loads(marker.read_text())
    except (OSError, ValueError):
        return f"the lake under {home}"
    return (
        f"{info['days']:g} days at {info['rate']} events/s ending {info['end']} "
        f"({info['events']:,} events, {info['quarantined']:,} quarantined), written by "
        f"bench/history.py as {info['batches']} committed batches of {info['batch_minutes']} "
        f"min each (compacted history); gold holds {info['operator_minute_rows']:,} "
        f"operator-minute and {info['postal_status_minute_rows']:,} postal-status-minute rows"
    )


def report(results: list[PageResult], timer: QueryTimer, home: Path, runs: int) -> str:
    import duckdb
    import streamlit

    now = datetime.now(UTC)
    lines = [
        "# Dashboard pages: server-side run time",
        "",
        f"Measured {now:%Y-%m-%d %H:%M} UTC with `bench/pages_bench.py` on {describe_machine()}; "
        f"Python {platform.python_version()}, Streamlit {streamlit.__version__}, "
        f"DuckDB {duckdb.__version__}.",
        "",
        f"Lake: {describe_lake(home)}.",
        "",
        "Each figure is one whole script run under `streamlit.testing.v1.AppTest`. "
        "Cold: caches and engine cleared (first visitor after a server start; median of the "
        f"cold runs). Refresh: query cache cleared, engine kept (every auto-refresh; {runs} "
        f"runs). Warm: cached reruns (a widget click; {runs} runs). Queries: the DuckDB time "
        f"inside a refresh run (median). Budget: {BUDGET_MS:.0f} ms.",
        "",
        "| page | range | cold ms | refresh p50 / p95 ms | warm p50 / p95 ms | queries ms |",
        "|---|---|---:|---:|---:|---:|",
    ]
    over = []
    for r in results:
        if r.problem and not r.cold_ms:
            lines.append(f"| {r.page} | {r.preset} | {r.problem} | | | |")
            continue
        cold = statistics.median(r.cold_ms)
        refresh = (percentile(r.refresh_ms, 0.5), percentile(r.refresh_ms, 0.95))
        warm = (percentile(r.warm_ms, 0.5), percentile(r.warm_ms, 0.95))
        lines.append(
            f"| {r.page} | {r.preset} | {cold:.0f} | {refresh[0]:.0f} / {refresh[1]:.0f} | "
            f"{warm[0]:.0f} / {warm[1]:.0f} | {statistics.median(r.query_ms):.0f} |"
        )
        for label, value in (("cold", cold), ("refresh p95", refresh[1]), ("warm p95", warm[1])):
            if value > BUDGET_MS:
                over.append(f"{r.page} ({r.preset}) {label} {value:.0f} ms")
        if r.problem:
            over.append(f"{r.page} ({r.preset}) ended with {r.problem}")
    lines += ["", "Over budget: " + ("; ".join(over) if over else "none") + ".", ""]
    lines += [
        "## Queries (DuckDB, inside refresh runs)",
        "",
        "| query · range | calls | p50 ms | p95 ms | max ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, values in sorted(timer.by_query.items()):
        lines.append(
            f"| {name} | {len(values)} | {percentile(values, 0.5):.1f} | "
            f"{percentile(values, 0.95):.1f} | {max(values):.1f} |"
        )
    return "\n".join(lines) + "\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=PROJECT_ROOT / ".telcopulse" / "bench")
    parser.add_argument(
        "--range",
        dest="presets",
        action="append",
        help='time-range preset to measure (repeatable; default "1 h" and "7 d")',
    )
    parser.add_argument("--runs", type=int, default=10, help="refresh and warm runs per page")
    parser.add_argument("--cold", type=int, default=3, help="cold runs per page")
    parser.add_argument("--page", action="append", help="only these pages (e.g. pages/1_KPIs.py)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    home = args.home.resolve()
    if not (home / "lake" / "_ops").is_dir():
        print(f"no committed lake under {home}: run bench/history.py first", file=sys.stderr)
        return 2
    for name in [n for n in os.environ if n.startswith("TELCOPULSE_")]:
        del os.environ[name]
    os.environ["TELCOPULSE_HOME"] = str(home)
    # Long ticks, so cached reruns stay cached; nothing listens on the Kinesis port, so the
    # health page's stream probe fails fast instead of reaching another process's emulator.
    os.environ["TELCOPULSE_REFRESH_SECONDS"] = "600"
    os.environ["TELCOPULSE_EMULATOR_PORT"] = str(free_port())
    os.chdir(PROJECT_ROOT)
    sys.path.insert(0, str(PROJECT_ROOT / "bench"))

    timer = QueryTimer()
    timer.install()
    pages = args.page or app_pages()
    presets = args.presets or ["1 h", "7 d"]
    # The first run in a process imports pandas, plotly and friends: keep that out of the figures.
    measure_page(HOME_PAGE, presets[0], timer, cold=0, runs=0)
    timer.by_query.clear()
    results = []
    for preset in presets:
        for page in pages:
            print(f"measuring {page} over {preset}", file=sys.stderr, flush=True)
            results.append(measure_page(page, preset, timer, cold=args.cold, runs=args.runs))
    text = report(results, timer, home, args.runs)
    print(text)
    args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
