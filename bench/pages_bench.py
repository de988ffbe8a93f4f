"""Dashboard page benchmark (bench): each page's server-side run time and gold read per refresh.

Points the app at lakes ``bench.history`` wrote (1, 7 and 30 days by default), runs
every page headlessly with ``streamlit.testing.v1.AppTest`` and times whole script runs:

- cold: ``st.cache_data`` and ``st.cache_resource`` cleared (so a new DuckDB engine too),
  as for the first visitor after a server start;
- refresh: ``st.cache_data`` cleared, engine kept, as on every auto-refresh tick;
- warm: plain reruns that hit the caches, as on a widget click.

Every query the pages send is timed at ``DuckDBEngine.run``, which also profiles it for
the bytes DuckDB read (``measure_io``): summed over a refresh run's gold queries, that is
what one refresh reads of gold, the stand-in for Athena's bytes scanned. Usage:

    .venv/bin/python -m bench.pages_bench [--home .telcopulse/bench] [--days 1 --days 30]
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from bench.lakes import GOLD, MARKER, history_home

# Pages run outside a Streamlit server here, which Streamlit warns about on every run.
os.environ.setdefault("STREAMLIT_LOGGER_LEVEL", "error")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
HOME_PAGE = "Home.py"
PRESETS = ("1 h", "24 h", "7 d", "all")
GOLD_TABLES = re.compile(r"\b(" + "|".join(table.name for table in GOLD) + r")\b")
TIMEOUT_S = 300


@dataclass
class PageResult:
    page: str
    preset: str
    days: int
    cold_ms: list[float] = field(default_factory=list)
    refresh_ms: list[float] = field(default_factory=list)
    warm_ms: list[float] = field(default_factory=list)
    query_ms: list[float] = field(default_factory=list)  # per refresh run, summed
    gold_bytes: list[int] = field(default_factory=list)  # per refresh run, summed
    other_bytes: list[int] = field(default_factory=list)  # _ops, quarantine, compactions
    problem: str | None = None


# What ``backend.queries.bind`` makes of a list parameter: one placeholder per item.
_LIST = re.compile(r"concat\((?:CAST\(\? AS VARCHAR\)(?:, CAST\(\? AS VARCHAR\))*)?\)")


def shape(sql: str) -> str:
    """``sql`` as ``bind`` leaves it, with each list parameter back to a single ``?``."""
    return _LIST.sub("?", sql)


@dataclass
class Call:
    name: str
    seconds: float
    bytes_read: int
    gold: bool


class QueryTimer:
    """Wraps ``DuckDBEngine.run``: times each query by its name in ``backend/sql`` and has the
    engine measure the bytes it read."""

    def __init__(self) -> None:
        from backend.queries import bind, load_sql, parameter_names, query_names

        # The engine sees each query as ``bind`` leaves it (``?`` in place of the names, a
        # list as one ``?`` per item): a query is known by that text with lists as one ``?``.
        self.names = {}
        for name in query_names():
            sql = load_sql(name)
            self.names[shape(bind(sql, dict.fromkeys(parameter_names(sql), 0))[0])] = name
        self.calls: list[Call] = []
        self.by_query: dict[tuple[str, str, int], list[Call]] = defaultdict(list)

    def install(self) -> None:
        from backend.engine import DuckDBEngine

        original = DuckDBEngine.run
        timer = self

        def timed_run(engine, sql, params=(), *, scope=None):
            engine.measure_io = True
            started = time.perf_counter()
            try:
                return original(engine, sql, params, scope=scope)
            finally:
                timer.calls.append(
                    Call(
                        timer.names.get(shape(sql), "(unnamed)"),
                        time.perf_counter() - started,
                        engine.last_bytes_read or 0,
                        bool(GOLD_TABLES.search(sql)),
                    )
                )

        DuckDBEngine.run = timed_run

    def take(self) -> list[Call]:
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


def measure_page(
    page: str, preset: str, days: int, timer: QueryTimer, *, cold: int, runs: int
) -> PageResult:
    from streamlit.testing.v1 import AppTest

    from backend.windows import DEFAULT_PRESET

    result = PageResult(page, preset, days)
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
        result.query_ms.append(sum(c.seconds for c in calls) * 1000)
        result.gold_bytes.append(sum(c.bytes_read for c in calls if c.gold))
        result.other_bytes.append(sum(c.bytes_read for c in calls if not c.gold))
        for call in calls:
            timer.by_query[(call.name, preset, days)].append(call)
    for _ in range(runs):
        result.warm_ms.append(timed_run(at))
    timer.take()
    result.problem = failure(at)
    return result


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def point_app_at(home: Path) -> None:
    for name in [n for n in os.environ if n.startswith("TELCOPULSE_")]:
        del os.environ[name]
    os.environ["TELCOPULSE_HOME"] = str(home)
    # Long ticks, so cached reruns stay cached; nothing listens on the Kinesis port, so the
    # health page's stream probe fails fast instead of reaching another process's emulator.
    os.environ["TELCOPULSE_REFRESH_SECONDS"] = "600"
    os.environ["TELCOPULSE_EMULATOR_PORT"] = str(free_port())


def measure_pages(
    homes: dict[int, Path], *, presets=PRESETS, runs: int = 5, cold: int = 2, log=print
) -> tuple[list[PageResult], QueryTimer]:
    """Every page over every preset and lake size; ``homes`` maps days to a history home."""
    os.chdir(PROJECT_ROOT)
    timer = QueryTimer()
    timer.install()
    results = []
    for days, home in sorted(homes.items()):
        point_app_at(home)
        clear_caches(engine=True)
        # The first run in a process imports pandas, plotly and friends: not in the figures.
        measure_page(HOME_PAGE, presets[0], days, timer, cold=0, runs=0)
        timer.take()
        for preset in presets:
            for page in app_pages():
                log(f"measuring {page} over {preset} with {days} days of gold")
                results.append(measure_page(page, preset, days, timer, cold=cold, runs=runs))
    return results, timer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=PROJECT_ROOT / ".telcopulse" / "bench")
    parser.add_argument("--days", type=int, action="append", help="history sizes (1, 7, 30)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    homes = {d: history_home(args.home.resolve(), d) for d in (args.days or [1, 7, 30])}
    missing = [str(h) for h in homes.values() if not (h / MARKER).exists()]
    if missing:
        print(f"no history in {', '.join(missing)}: run python -m bench.history", file=sys.stderr)
        return 2
    results, _ = measure_pages(homes, runs=args.runs, log=lambda m: print(m, file=sys.stderr))
    for r in results:
        print(
            f"{r.days:>2} d {r.preset:>5} {r.page:28s} refresh p50 "
            f"{statistics.median(r.refresh_ms) if r.refresh_ms else float('nan'):6.0f} ms, "
            f"gold {statistics.median(r.gold_bytes) / 1e6 if r.gold_bytes else 0:6.2f} MB "
            f"{r.problem or ''}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
