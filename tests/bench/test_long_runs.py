"""The judgements of the long runs (bench): the soak's memory trend and the viewers' summary.

The runs themselves take an hour (`make soak`) and minutes (`make viewers`); these check
what they conclude from their samples."""

from __future__ import annotations

import numpy as np
import psutil
import pytest

from bench.memory_bench import memory_at_rest, memory_trends, soak_report, soak_verdict
from bench.viewers_bench import is_noise, report, summary

MB = 2**20


def timeline(rss_mb, minutes: int = 60, every: int = 30, lag: float = 4.0) -> list[dict]:
    """Samples every ``every`` s of processes whose memory is ``rss_mb(seconds)``."""
    return [
        {
            "seconds": t,
            "rss": {name: int(f(t) * MB) for name, f in rss_mb.items()},
            "events": t * 2000,
            "lag": {"source_lag_seconds": 0.5, "newest_event_age_seconds": lag},
            "dashboard": "ok",
            "kpis_page_seconds": 1.5,
        }
        for t in range(every, minutes * 60 + 1, every)
    ]


def figures(samples: list[dict]) -> dict:
    return {
        "rate": 2000,
        "seconds": samples[-1]["seconds"],
        "samples_every": 30,
        "start": samples[0]["rss"],
        "end": samples[-1]["rss"],
        "timeline": samples,
        "page_problems": [],
    }


def test_a_sawtooth_heap_is_flat_and_a_steady_leak_is_not():
    noise = np.random.default_rng(7)
    samples = timeline(
        {
            # a JVM heap that grows and is collected every 5 minutes, around a flat level
            "stream": lambda t: 1900 + 40 * ((t % 300) / 300) + noise.normal(0, 3),
            # warm-up growth in the first half hour only, then flat
            "dashboard": lambda t: 250 + min(t, 1800) / 1800 * 50,
            "leaky": lambda t: 200 + t / 3600 * 30,  # +30 MB an hour, every hour
        }
    )
    trends = memory_trends(samples)
    assert trends["stream"]["flat"]
    assert trends["dashboard"]["flat"]
    assert not trends["leaky"]["flat"]
    assert trends["leaky"]["slope_mb_per_hour"] == pytest.approx(30, abs=0.5)
    assert trends["leaky"]["minutes"] == 30
    assert trends["leaky"]["samples"] == 61
    problems = soak_verdict(figures(samples))
    assert problems == ["leaky memory (RSS) still moving: +30 MB/h (± 0) over the last 30 min"]
    text = soak_report(figures(samples), problems)
    assert "| leaky | 200 MB | 230 MB | +30.0 MB/h |" in text
    assert "Result: **fail**: leaky memory (RSS) still moving" in text


def test_the_trend_is_judged_on_pss_where_the_samples_have_it():
    """Forked Python workers share their pages with the daemon: summed RSS jumps with how
    many are alive, summed PSS does not. A run with PSS is judged on it, not on RSS."""
    workers = np.random.default_rng(3).integers(0, 4, size=120)  # alive at each sample
    samples = timeline({"stream": lambda t: 1500 + 250 * workers[t // 30 - 1]})
    for sample in samples:
        sample["pss"] = {"stream": 1400 * MB + sample["seconds"] * 1000}  # 3.4 MB an hour
    trends = memory_trends(samples)
    assert trends["stream"]["measure"] == "PSS"
    assert trends["stream"]["slope_mb_per_hour"] == pytest.approx(3.43, abs=0.01)
    assert not trends["stream"]["flat"]
    assert soak_verdict(figures(samples)) == [
        "stream memory (PSS) still moving: +3 MB/h (± 0) over the last 30 min"
    ]
    text = soak_report(figures(samples), soak_verdict(figures(samples)))
    assert "slope of its PSS, last 30 min" in text
    assert f"| 3600 s | {sum(samples[-1]['rss'].values()) // MB} MB | 1403 MB |" in text
    # Without PSS in every sample of the window (a run saved before it), RSS is judged.
    del samples[-1]["pss"]
    assert memory_trends(samples)["stream"]["measure"] == "RSS"


def test_the_dedup_index_grows_by_design_and_only_the_rest_is_judged():
    """8 bytes per silver event (glue_job.dedup.SeenEvents) for the index's first day: at
    2,000 events/s that is 55 MB an hour the stream job must hold. What grows beyond it is
    judged, and the report shows both."""
    index_mb = 2000 * 8 / MB  # per second
    for extra, flat in [(0.0, True), (30.0, False)]:
        samples = timeline({"stream": lambda t: 1500.0, "emulator": lambda t: 200.0})
        for sample in samples:
            t = sample["seconds"]
            sample["silver"] = 2000 * t
            sample["pss"] = {
                "stream": int((1400 + index_mb * t + extra * t / 3600) * MB),
                "emulator": 150 * MB,
            }
        trends = memory_trends(samples)
        stream = trends["stream"]
        assert stream["index_mb_per_hour"] == pytest.approx(index_mb * 3600)
        assert stream["total_mb_per_hour"] == pytest.approx(index_mb * 3600 + extra, abs=0.01)
        assert stream["slope_mb_per_hour"] == pytest.approx(extra, abs=0.01)
        assert stream["flat"] is flat
        assert trends["emulator"]["index_mb_per_hour"] == 0
        problems = soak_verdict(figures(samples))
        text = soak_report(figures(samples), problems)
        total = f"+{54.9 + extra:.1f} MB/h"
        assert f"| stream | 1500 MB | 1500 MB | {total} | {total} | +54.9 MB/h | " in text
        if not flat:
            assert problems == [
                "stream memory (PSS) still moving beyond its dedup index: +30 MB/h (± 0) "
                "over the last 30 min"
            ]
    # A run saved before silver was counted is judged whole.
    del samples[-1]["silver"]
    assert memory_trends(samples)["stream"]["index_mb_per_hour"] == 0


def test_file_pages_are_the_kernels_cache_and_only_anonymous_memory_is_judged():
    """The emulator maps its LevelDB table files: their pages grow with the data it keeps
    and the kernel drops them under pressure. Anonymous PSS is judged; the whole PSS's
    slope is shown beside it."""
    samples = timeline({"emulator": lambda t: 300.0, "dashboard": lambda t: 250.0})
    for sample in samples:
        t = sample["seconds"]
        sample["pss"] = {"emulator": (150 + 100 * t / 3600) * MB, "dashboard": 240 * MB}
        sample["pss_anon"] = {"emulator": 100 * MB, "dashboard": (200 + 20 * t / 3600) * MB}
    trends = memory_trends(samples)
    assert trends["emulator"]["measure"] == "anonymous PSS"
    assert trends["emulator"]["pss_mb_per_hour"] == pytest.approx(100)
    assert trends["emulator"]["flat"]
    assert not trends["dashboard"]["flat"]
    problems = soak_verdict(figures(samples))
    assert problems == [
        "dashboard memory (anonymous PSS) still moving: +20 MB/h (± 0) over the last 30 min"
    ]
    text = soak_report(figures(samples), problems)
    assert "| emulator | 300 MB | 300 MB | +100.0 MB/h | +0.0 MB/h | +0.0 MB/h | +0.0 MB/h |" in (
        text
    )
    assert "Mapped files' pages are left out" in text


def test_a_soak_that_falls_behind_or_loses_its_dashboard_fails():
    samples = timeline({"stream": lambda t: 1900.0})
    for sample in samples[-20:]:
        sample["lag"]["newest_event_age_seconds"] = 60.0
    samples[5]["dashboard"] = "no answer: timed out"
    problems = soak_verdict(figures(samples))
    assert problems == [
        "falling behind: newest event 4 s old early, 60 s late",
        "dashboard did not answer at 180 s: no answer: timed out",
    ]
    assert soak_verdict(figures(samples[:3])) == ["too short to judge: fewer than five samples"]


def test_a_failed_lake_read_is_a_finding_of_the_soak_not_its_end():
    """The bench's own read of the lake failed once (a soak met this after 55 minutes, when
    compaction deleted a file the read had listed): the sample says so, the run goes on,
    and the verdict names it."""
    from bench.memory_bench import NO_LAG

    samples = timeline({"stream": lambda t: 1900.0})
    samples[-1] |= {"events": None, "lag": NO_LAG, "read_error": "IO Error: gone.parquet"}
    problems = soak_verdict(figures(samples))
    assert problems == ["the lake could not be read at 3600 s: IO Error: gone.parquet"]
    text = soak_report(figures(samples), problems)
    assert "- Events committed: 7,140,000, 2,000 per second on average." in text
    assert "| 3600 s | 1900 MB | — | read failed | 0.0 s | 0.0 s | ok | 1.5 s |" in text


def session(page: str, answered_ms: list[float], errors=(), drawn_ms=None) -> dict:
    """A session's figures, with what the relay timed for it under ``answered_ms``."""
    return {
        "page": page,
        "first_load_seconds": 3.0,
        "answered_ms": answered_ms,
        "runs_ms": answered_ms if drawn_ms is None else drawn_ms,
        "errors": list(errors),
    }


def viewers(*sessions: dict) -> dict:
    return {
        "viewers": len(sessions),
        "minutes": 1,
        "rate": 200,
        "refresh_seconds": 5,
        "wall_seconds": 70,
        "cores": 2,
        "cpu_seconds": {"browsers": 90.0, "dashboard": 30.0},
        "sessions": [{k: v for k, v in s.items() if k != "answered_ms"} for s in sessions],
        "answered": [
            {"page": s["page"], "seconds": ms / 1000} for s in sessions for ms in s["answered_ms"]
        ],
    }


def test_the_viewers_pass_on_a_fast_answer_p95_without_errors_only():
    # Drawn slowly by a starved browser, answered fast by the dashboard: judged on answered.
    fast = viewers(
        session("Home", [400] * 12, drawn_ms=[3000] * 12),
        session("KPIs", [900] * 11 + [1900]),
    )
    s = summary(fast)
    assert (s["answered"]["runs"], s["expected_runs"], s["passed"]) == (24, 24, True)
    assert s["answered"]["per_page"]["KPIs"]["runs"] == 12
    assert s["drawn"]["per_page"]["Home"]["p95"] == 3.0
    text = report(fast)
    assert "| Home | 12 | 0.40 s | 0.40 s | 3.00 s |" in text
    assert "| **all** | **24** |" in text
    assert "browsers 90 s, dashboard 30 s" in text
    assert "Result: **pass**." in text

    slow = viewers(session("Map", [2500] * 12))
    assert not summary(slow)["passed"]
    broken = viewers(session("Home", [400] * 12, ["Home: an exception is shown"]))
    assert not summary(broken)["passed"]
    assert "Errors: 1: Home: an exception is shown" in report(broken)
    assert not summary(viewers(session("Home", [])))["passed"]  # nothing ran at all


def test_a_viewers_report_says_none_for_what_never_ran_and_counts_repeated_errors():
    timeout = "session failed: Page.wait_for_selector: Timeout 120000ms exceeded."
    starved = viewers(
        session("Home", [1800, 2700], drawn_ms=[]),
        *[session("Map", [], [timeout]) for _ in range(3)],
        session("KPIs", [], ["KPIs: connection PINGING_SERVER"]),
    )
    for session_figures in starved["sessions"][1:]:
        del session_figures["first_load_seconds"]
    text = report(starved)
    assert "| Home | 2 | 2.25 s | 2.66 s | none |" in text
    assert "| **all** | **2** | **2.25 s** | **2.66 s** | **none** |" in text
    assert "Drawn in this machine's browser: p50 none, p95 none, worst none." in text
    assert f"Errors: 4: 3 × {timeout}; KPIs: connection PINGING_SERVER" in text
    assert "inf" not in text


def test_only_the_processes_that_draw_are_the_ones_slowed_down():
    from bench.viewers_bench import _draws

    class Chromium(psutil.Process):
        def __init__(self, *args):
            self.args = ["/usr/lib/chromium/chromium", *args]

        def cmdline(self):
            return self.args

    assert _draws(Chromium("--type=renderer", "--renderer-client-id=7"))
    assert _draws(Chromium("--type=gpu-process"))
    assert not _draws(Chromium("--headless"))  # the browser process
    assert not _draws(Chromium("--type=utility", "--utility-sub-type=network.mojom.NetworkService"))


def test_only_what_an_offline_machine_or_a_deep_link_logs_is_noise():
    not_found = "Failed to load resource: the server responded with a status of 404 (Not Found)"
    assert is_noise(not_found, "http://127.0.0.1:8501/KPIs/_stcore/health")
    assert is_noise(not_found, "http://127.0.0.1:8501/Map/_stcore/host-config")
    assert not is_noise(not_found, "http://127.0.0.1:8501/_stcore/health")
    assert not is_noise(not_found, "http://127.0.0.1:8501/KPIs/app.js")
    assert is_noise("GET https://a.basemaps.cartocdn.com/x.png net::ERR_NAME_NOT_RESOLVED", "")
    assert not is_noise("Uncaught TypeError: x is undefined", "http://127.0.0.1:8501/")


def test_the_cpu_meter_counts_a_busy_process_and_keeps_its_last_sample_after_it_exits():
    import subprocess
    import sys
    import time

    import psutil

    from bench.viewers_bench import CpuMeter

    spin = "import time\nt = time.time()\nwhile time.time() - t < 1.5: pass"
    busy = subprocess.Popen([sys.executable, "-c", spin])
    try:
        meter = CpuMeter({"busy": psutil.Process(busy.pid)})
        time.sleep(1.0)
        meter.sample()
        while_running = meter.used()["busy"]
        busy.wait(timeout=30)
    finally:
        busy.kill()
    meter.sample()  # the process has exited: its last sample stands
    used = meter.used()
    assert set(used) == {"busy", "browsers"}
    assert used["browsers"] == 0
    assert 0.1 <= while_running <= 1.2
    assert used["busy"] == while_running


def test_the_browsers_session_and_its_drawing_processes_run_at_the_lowest_priority(tmp_path):
    """A stand-in browser (named like Chromium, started in a session of its own as
    Playwright starts Chromium, with a renderer's flag): the meter puts its session's
    autogroup at nice 19, and the process itself, and leaves the bench's session alone."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import psutil

    from bench.viewers_bench import CpuMeter

    own = Path("/proc/self/autogroup")
    if not own.exists():
        pytest.skip("this kernel has no autogroups (CONFIG_SCHED_AUTOGROUP)")
    before = own.read_text()
    stub = tmp_path / "chromium-stub"
    stub.symlink_to(sys.executable)
    browser = subprocess.Popen(
        [str(stub), "-c", "import time; time.sleep(60)", "--type=renderer"],
        start_new_session=True,
    )
    try:
        assert psutil.Process(browser.pid).name().startswith("chrom")
        CpuMeter({}).sample()
        assert Path(f"/proc/{browser.pid}/autogroup").read_text().endswith("nice 19\n")
        assert psutil.Process(browser.pid).nice() == 19
        assert own.read_text() == before
        assert os.getsid(browser.pid) != os.getsid(0)
    finally:
        browser.kill()
        browser.wait()


def test_a_stack_that_ignores_ctrl_c_is_killed_with_every_process_it_started():
    import signal
    import subprocess
    import sys

    import psutil

    from bench.memory_bench import stop_tree

    deaf = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "subprocess.Popen([sys.executable, '-c', 'import signal, time\\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\\ntime.sleep(60)'])\n"
        "print('up', flush=True)\n"
        "time.sleep(60)\n"
    )
    up = subprocess.Popen([sys.executable, "-c", deaf], stdout=subprocess.PIPE, text=True)
    assert up.stdout.readline() == "up\n"
    (child,) = psutil.Process(up.pid).children(recursive=True)
    stop_tree(up, grace=0.5)
    assert up.returncode == -signal.SIGKILL
    child.wait(timeout=10)
    assert not child.is_running()


def test_a_process_gone_while_the_meter_lists_it_is_skipped():
    import psutil

    from bench.viewers_bench import _is_browser

    class Gone(psutil.Process):
        def name(self):
            raise psutil.NoSuchProcess(self.pid)

    assert not _is_browser(Gone())


def test_a_report_says_when_its_run_finished_not_when_it_was_written():
    """`memory_bench --judge` re-judges a saved run later: the section keeps the run's time."""
    samples = timeline({"stream": lambda t: 1900.0})
    saved = figures(samples) | {"finished": "2026-12-05 02:13 UTC"}
    assert "finished 2026-12-05 02:13 UTC." in soak_report(saved, [])
    watched = viewers(session("Home", [400] * 12)) | {"finished": "2026-12-05 02:40 UTC"}
    assert "finished 2026-12-05 02:40 UTC on this machine" in report(watched)


def test_a_report_says_whether_memory_was_sampled_at_rest_or_after_a_visit():
    """Runs saved before memory was sampled ahead of each visit are re-judged as they were."""
    samples = timeline({"stream": lambda t: 1900.0})
    at_rest = soak_report(figures(samples) | {"memory_at_rest": True}, [])
    assert "memory first, while the dashboard is at rest (its last visit 30 s gone)" in at_rest
    older = soak_report(figures(samples), [])
    assert "opened the KPIs page in headless Chromium." in older
    assert "at rest" not in older


def test_the_dashboard_at_rest_is_its_least_read_over_one_refresh_interval():
    """With the wallboard refreshing every 10 s, a single read can land in a page run; the
    least of reads every 0.5 s over the interval is what the dashboard keeps between runs."""
    now = [0.0]
    # 300 MB while a page runs (2 s of every 10), 200 MB between runs, 210 MB at the first read
    reads = iter(
        [{"pss_anon": 210 * MB}]
        + [{"pss_anon": (300 if (i * 0.5) % 10 < 2 else 200) * MB, "read": i} for i in range(1, 40)]
    )
    taken = []

    def read(process):
        taken.append(next(reads))
        return taken[-1]

    def sleep(seconds):
        now[0] += seconds

    rest = memory_at_rest(None, 10, read=read, clock=lambda: now[0], sleep=sleep)
    assert rest["pss_anon"] == 200 * MB
    assert len(taken) == 21  # the first read and one every 0.5 s for 10 s
    assert all(r["pss_anon"] >= rest["pss_anon"] for r in taken)


def test_a_report_names_the_dashboards_rest_window_when_it_had_one():
    samples = timeline({"stream": lambda t: 1900.0})
    with_wallboard = soak_report(
        figures(samples) | {"memory_at_rest": True, "dashboard_rest_window": 10}, []
    )
    assert "the least of reads every 0.5 s over the 10 s before each sample" in with_wallboard
    assert "least of reads" not in soak_report(figures(samples) | {"memory_at_rest": True}, [])


def test_the_wallboards_refreshes_are_reported_and_its_errors_fail_the_soak():
    """The soak's wallboard (one session left open, refreshing itself) is a line of the
    report; what it saw go wrong is a problem of the run, and a run without one (saved
    before it, or with no Chromium) has no such line."""
    samples = timeline({"stream": lambda t: 1900.0})
    watched = {"page": "KPIs", "runs_ms": [400.0] * 18 + [2400.0] * 2, "errors": []}
    text = soak_report(figures(samples) | {"wallboard": watched}, [])
    assert (
        "- Wallboard: one browser session kept the KPIs page open for the whole run and it "
        "refreshed itself 20 times, each drawn in 0.4 s (median), 2.4 s at p95" in text
    )
    assert "no errors." in text
    assert "Wallboard" not in soak_report(figures(samples), [])
    broken = {"page": "KPIs", "runs_ms": [], "errors": ["KPIs: an exception is shown"]}
    run = figures(samples) | {"wallboard": broken}
    run["page_problems"] = [f"wallboard: {e}" for e in broken["errors"]]  # as measure() adds
    assert soak_verdict(run) == ["wallboard: KPIs: an exception is shown"]
    assert "refreshed itself 0 times (the dashboard" in soak_report(run, soak_verdict(run))


def test_a_components_memory_is_split_among_the_programs_it_runs():
    """tree_memory names each member of a tree (the process itself is ``main``, a Python
    child of it ``python``) and the members add up to the tree's anonymous PSS."""
    import subprocess
    import sys
    import time

    from bench.memory_bench import tree_memory

    sleeper = "import time; time.sleep(60)"
    parent = (
        "import subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, '-c', {sleeper!r}])\n"
        "time.sleep(60)"
    )
    component = subprocess.Popen([sys.executable, "-c", parent])
    try:
        root = psutil.Process(component.pid)
        deadline = time.monotonic() + 30
        while not root.children() and time.monotonic() < deadline:
            time.sleep(0.05)
        sizes = tree_memory(root)
    finally:
        for child in psutil.Process(component.pid).children(recursive=True):
            child.kill()
        component.kill()
        component.wait()
    assert set(sizes["members"]) == {"main", "python"}
    assert sum(sizes["members"].values()) == sizes["pss_anon"]
    assert sizes["members"]["main"] > 0
    assert sizes["members"]["python"] > 0


def test_the_report_splits_each_slope_by_member():
    """The stream's driver grows with its dedup index, its JVM stays flat: the last column
    says which member moved. A run saved before the split shows a dash."""
    samples = timeline({"stream": lambda t: 1900.0, "producer": lambda t: 50.0})
    for sample in samples:
        t = sample["seconds"]
        main, java = (120 + 55 * t / 3600) * MB, 800 * MB
        sample["pss_anon"] = {"stream": main + java, "producer": 45 * MB}
        sample["pss_anon_members"] = {"stream": {"main": main, "java": java}}
        sample["silver"] = round(55 * MB / 8 * t / 3600)  # the index: 8 bytes an event
    trends = memory_trends(samples)
    assert trends["stream"]["members_mb_per_hour"] == {
        "java": pytest.approx(0, abs=1e-6),
        "main": pytest.approx(55),
    }
    assert trends["producer"]["members_mb_per_hour"] == {}
    text = soak_report(figures(samples), [])
    assert "| yes | java +0, main +55 |" in text
    assert "| yes | — |" in text
