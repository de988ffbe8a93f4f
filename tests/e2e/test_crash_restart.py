"""Exactly once under fire: SIGKILL the stream job at random moments, and restart the emulator.

Each test streams a known feed of events (valid ones, bad ones and re-sent duplicates,
written to a JSON Lines file first so the expected outcome is computed from the file
with plain Python and pandas, not with the pipeline's code) through the real CLI, hurts
the pipeline while it runs (kills, an emulator restart, a full disk), then checks every
layer against the feed. Compaction runs
every few batches meanwhile (TELCOPULSE_COMPACT_AFTER_BATCHES), so the kills also land
while partitions are being folded and superseded files deleted.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
from helpers import PROJECT_ROOT, free_port
from reliability import PipelineScenario, record
from stack_helpers import Stack, cli_command, newest_commit, running_emulator

from backend.engine import DuckDBEngine
from backend.errors import QueryError
from backend.queries import committed_batch
from backend.synthetic import SyntheticGenerator
from glue_job.contract import ALIASES_FILE

pytestmark = pytest.mark.slow

VALID_EVENTS = 20_000
BAD_EVERY = 400  # one bad record per this many valid ones
RESENT_EVERY = 250  # and one valid event sent twice
MAX_KILLS = 10


def write_feed(path: Path, valid: int, seed: int) -> dict:
    """A feed of ``valid`` synthetic events plus bad records and re-sent duplicates."""
    generator = SyntheticGenerator(seed=seed)
    events, lines, bad = [], [], 0
    for i in range(valid):
        event = generator.next_event()
        events.append(event)
        lines.append(json.dumps(event))
        if i % RESENT_EVERY == 0:
            lines.append(json.dumps(event))  # the same event again: a duplicate
        if i % BAD_EVERY == 0:
            lines.append(json.dumps({**event, "event_id": f"bad-{i}", "status": 9}))
            bad += 1
    path.write_text("\n".join(lines) + "\n")
    return {"events": events, "records": len(lines), "bad": bad}


def canonical(operator: str, aliases: dict[str, str]) -> str:
    """The contract's rule, restated from its data file: case and spacing never split one."""
    key = " ".join(operator.split()).casefold()
    return aliases.get(key) or " ".join(operator.split()).upper()


def expected_signal(events: list[dict]) -> pd.DataFrame:
    aliases = pd.read_csv(ALIASES_FILE)
    table = dict(zip(aliases["alias"].str.casefold(), aliases["operator"], strict=True))
    frame = pd.DataFrame(events)
    frame["operator"] = frame["operator"].map(lambda op: canonical(op, table))
    signal = frame.dropna(subset=["signal_dbm"]).groupby("operator")["signal_dbm"]
    return signal.agg(avg_signal_dbm="mean", samples="count")


def current(stack: Stack, table: str) -> pd.DataFrame:
    """The rows of ``table`` a reader at the newest committed batch sees."""
    engine = DuckDBEngine(stack.settings.lake)
    if table in ("bronze", "silver", "compactions"):
        where = "commit_id <= ?"  # never compacted: every file of a committed batch counts
    else:
        where = "? BETWEEN commit_id AND visible_through"
    return engine.run(f"SELECT * FROM {table} WHERE {where}", [committed_batch(engine)])


def compactions(stack: Stack) -> int:
    """Compactions committed so far (none before the first batch's files exist)."""
    try:
        return len(current(stack, "compactions"))
    except QueryError:
        return 0


def wait_until_running(running: subprocess.Popen, timeout: float = 180) -> None:
    """Until the job says its query runs: from then on Ctrl-C stops it between batches."""
    deadline = time.monotonic() + timeout
    while "stream job running" not in Path(running.args_log).read_text():
        assert running.poll() is None, f"the stream job exited with {running.returncode}"
        assert time.monotonic() < deadline, f"the stream job was not running after {timeout} s"
        time.sleep(0.5)


def job(stack: Stack, *args: str) -> subprocess.Popen:
    log = stack.home / f"stream-{time.monotonic_ns()}.log"
    with log.open("w") as out:
        running = subprocess.Popen(
            cli_command("stream", *args),
            env=stack.env,
            cwd=PROJECT_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    running.args_log = str(log)
    return running


def producer(stack: Stack, feed: Path, rate: int) -> subprocess.Popen:
    return subprocess.Popen(
        cli_command("produce", "--file", str(feed), "--rate", str(rate)),
        env=stack.env,
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def signal_samples(stack: Stack) -> int:
    """What `telcopulse kpi signal` reports, summed: readings in committed gold."""
    frame = pd.DataFrame(json.loads(stack.cli("kpi", "signal", "--format", "json").stdout))
    return int(frame["samples"].sum()) if len(frame) else 0


def whole_batch_totals(stack: Stack) -> set[int]:
    """Signal readings after each committed batch: the only totals a reader may ever see.
    Readings under an operator only: a handset banner's are in no operator's KPI (README)."""
    silver = current(stack, "silver")
    with_operator = silver.dropna(subset=["signal_dbm", "operator"])
    per_commit = with_operator.groupby("commit_id").size().sort_index()
    ops = current(stack, "ops")
    totals, running = {0}, 0
    for batch in sorted(ops["batch_id"]):
        running += int(per_commit.get(batch, 0))
        totals.add(running)
    return totals


def measure_layers(stack: Stack, feed: dict) -> dict:
    """Every figure the scenario is judged on, read from the lake and the CLI."""
    silver = current(stack, "silver")
    quarantine = current(stack, "quarantine")
    ops = current(stack, "ops")
    sent_ids = {e["event_id"] for e in feed["events"]}
    kpi = stack.kpi("signal").set_index("operator")
    expected = expected_signal(feed["events"])
    return {
        "records": int(ops["records_read"].sum()),
        "bronze": len(current(stack, "bronze")),
        "silver": len(silver),
        "duplicates": int(ops["duplicates"].sum()),
        "quarantined": len(quarantine),
        "reasons": {
            str(k): int(v) for k, v in quarantine["reasons"].explode().value_counts().items()
        },
        "lost": len(sent_ids - set(silver["event_id"])),
        "extra": len(set(silver["event_id"]) - sent_ids),
        "doubled": int(silver["event_id"].duplicated().sum())
        + max(0, int(kpi["samples"].sum()) - int(expected["samples"].sum())),
        "batches_once": not ops["batch_id"].duplicated().any(),
        "reconciled": bool(
            (ops.bronze_rows == ops.silver_rows + ops.quarantine_rows + ops.duplicates).all()
            and int(ops.silver_rows.sum()) == len(silver)
            and int(ops.quarantine_rows.sum()) == len(quarantine)
        ),
        "kpi": kpi,
        "expected_kpi": expected,
    }


def assert_layers_match_the_feed(figures: dict, feed: dict) -> None:
    assert figures["lost"] == 0, f"{figures['lost']} events never reached silver"
    assert figures["extra"] == 0, f"{figures['extra']} events in silver were never sent"
    assert figures["doubled"] == 0, f"{figures['doubled']} events counted twice"
    assert figures["batches_once"]
    assert figures["reconciled"], "bronze != silver + quarantine + duplicates"
    assert figures["quarantined"] == feed["bad"]
    assert set(figures["reasons"]) == {"out_of_range_status"}
    assert figures["records"] >= feed["records"]  # more when the producer re-sent
    assert figures["bronze"] == figures["records"]
    kpi, expected = figures["kpi"], figures["expected_kpi"]
    assert sorted(kpi.index) == sorted(expected.index)
    assert kpi["samples"].to_dict() == expected["samples"].to_dict()
    for operator, row in expected.iterrows():
        assert kpi.loc[operator, "avg_signal_dbm"] == pytest.approx(row["avg_signal_dbm"])


def scenario(name: str, figures: dict, kills: int, passed: bool, notes: str) -> PipelineScenario:
    return PipelineScenario(
        name=name,
        events_sent=figures["records"],
        events_in_silver=figures["silver"],
        duplicates_dropped=figures["duplicates"],
        quarantined=figures["quarantined"],
        quarantined_by_reason=figures["reasons"],
        kills_survived=kills,
        lost_events=figures["lost"],
        double_counted_events=figures["doubled"],
        result="pass" if passed else "fail",
        notes=notes,
    )


def passes(check, *args) -> bool:
    try:
        check(*args)
    except AssertionError:
        return False
    return True


@pytest.fixture
def crash_stack(tmp_path):
    stack = Stack(tmp_path / "home", free_port())
    stack.env.update(TELCOPULSE_COMPACT_AFTER_BATCHES="2", TELCOPULSE_COMPACTION_GRACE_SECONDS="0")
    with running_emulator(stack) as process:
        stack.emulator = process  # the emulator test stops it and starts another
        yield stack


def test_sigkill_at_random_moments_neither_loses_nor_double_counts(crash_stack, tmp_path):
    stack = crash_stack
    feed = write_feed(tmp_path / "feed.jsonl", VALID_EVENTS, seed=21)
    # About 135 s of sending: room for a few runs that commit batches even when each takes
    # half a minute to start (a slow machine's CI run, 2026-12-07, committed 2 in 11 runs).
    sender = producer(stack, tmp_path / "feed.jsonl", rate=150)
    chance = random.Random(os.getpid())
    seen: list[int] = []
    kills = 0
    try:
        running = job(stack, "--trigger", "1")
        # At least three kills, all while events stream, and until compaction has run too (on
        # a loaded machine a run may be killed before it commits a batch).
        while sender.poll() is None or kills < 3 or (kills < MAX_KILLS and not compactions(stack)):
            wait_until_running(running)
            if kills % 2 and sender.poll() is None:
                # A few batches in (and past the first compaction, until there is one), then
                # within the next batch: the kill lands mid-batch, mid-compaction or
                # mid-garbage-collection.
                target = newest_commit(stack.settings.lake) + chance.randint(1, 3)
                deadline = time.monotonic() + 180
                while (
                    (newest_commit(stack.settings.lake) < target or not compactions(stack))
                    and running.poll() is None
                    and sender.poll() is None
                ):
                    assert time.monotonic() < deadline, f"batch {target} never committed"
                    seen.append(signal_samples(stack))
                    time.sleep(0.2)
                pause = chance.uniform(0, 1.5)
            else:
                pause = chance.uniform(1, 8)  # while the JVM warms up or mid-first-batch
            deadline = time.monotonic() + pause
            while time.monotonic() < deadline:
                seen.append(signal_samples(stack))
                time.sleep(0.2)
            running.send_signal(signal.SIGKILL)
            running.wait()
            kills += 1
            running = job(stack, "--trigger", "1")
        # The last job stops the way a user stops it, once it is up and committing again.
        wait_until_running(running)
        running.send_signal(signal.SIGINT)
        assert running.wait(timeout=120) == 0
    finally:
        for process in (sender, running):
            if process.poll() is None:
                process.kill()
    assert "sent" in sender.stdout.read()
    stack.cli("stream", "--until-idle")
    seen.append(signal_samples(stack))

    figures = measure_layers(stack, feed)
    half_batches = set(seen) - whole_batch_totals(stack)
    compacted = len(current(stack, "compactions"))
    whole = seen == sorted(seen) and not half_batches
    record(
        scenario(
            "SIGKILL the stream job at random moments, restart it",
            figures,
            kills,
            passes(assert_layers_match_the_feed, figures, feed) and whole and compacted > 0,
            f"{len(seen)} `kpi` polls during the run, each the total of whole committed "
            f"batches and never falling; {compacted} partition compactions meanwhile",
        )
    )
    assert_layers_match_the_feed(figures, feed)
    # What `kpi` showed only ever grew, and was always the total of whole committed batches.
    assert seen == sorted(seen)
    assert not half_batches, f"kpi showed totals no committed batch had: {sorted(half_batches)}"
    assert compacted > 0, "no compaction ran while the job was killed"


def test_emulator_restart_while_producing_loses_and_doubles_nothing(crash_stack, tmp_path):
    from backend.emulator import start_emulator, stop_emulator, wait_until_ready

    stack = crash_stack
    feed = write_feed(tmp_path / "feed.jsonl", 6_000, seed=22)
    running = job(stack, "--trigger", "1")
    sender = None
    emulator = None
    try:
        # The outage is for a running job: one still starting checks the stream first and
        # exits, rightly, when it cannot reach it (a slow machine's CI run, 2026-12-07).
        wait_until_running(running)
        # 15 s of sending; the outage starts once its first status line (after 5 s) says
        # records went out.
        sender = producer(stack, tmp_path / "feed.jsonl", rate=400)
        before = []
        while not (line := sender.stdout.readline()).startswith("sent "):
            assert line, "".join(before) + f"the producer exited with {sender.wait()}"
            before.append(line)
        # The fixture's emulator goes away for a few seconds (its data stays on disk)...
        stop_emulator(stack.emulator)
        time.sleep(5)
        # ...and comes back on the same port and data directory.
        emulator = start_emulator(stack.settings)
        wait_until_ready(stack.settings, timeout=30)
        output, _ = sender.communicate(timeout=300)
        assert sender.returncode == 0, output
        assert "retrying with backoff" in output
        assert "reachable again" in output
        assert running.poll() is None, "the stream job died with the stream"
        # On a loaded machine the job may still be starting: Ctrl-C stops it cleanly only
        # once its query runs.
        wait_until_running(running)
        running.send_signal(signal.SIGINT)
        assert running.wait(timeout=120) == 0
        stack.cli("stream", "--until-idle")
        figures = measure_layers(stack, feed)
    finally:
        for process in (sender, running):
            if process is not None and process.poll() is None:
                process.kill()
        if emulator is not None:
            stop_emulator(emulator)
    record(
        scenario(
            "Kinesis emulator restarted while the producer sends",
            figures,
            0,
            passes(assert_layers_match_the_feed, figures, feed),
            "the producer retried through the outage and said when the stream came back; "
            "the stream job kept running",
        )
    )
    assert_layers_match_the_feed(figures, feed)


@contextmanager
def small_disk(mountpoint: Path, megabytes: int = 64) -> Iterator[Path]:
    """A tmpfs of ``megabytes`` mounted at ``mountpoint`` (needs root), unmounted after."""
    mountpoint.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(mountpoint)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a size-limited tmpfs here (needs root): {mounted.stderr}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "--lazy", str(mountpoint)], check=True)


def fill(disk: Path, leave_bytes: int) -> Path:
    """Fill ``disk`` until only ``leave_bytes`` are free; deleting the file frees it."""
    stats = os.statvfs(disk)
    filler = disk / "filler"
    with filler.open("wb") as out:
        out.truncate(0)
        out.write(b"\0" * (stats.f_bavail * stats.f_frsize - leave_bytes))
    return filler


def test_full_disk_stops_the_job_with_one_line_and_it_resumes_exactly_once(tmp_path):
    """The lake's disk fills while a batch writes: the job stops with one clear line, no
    part of the batch is visible meanwhile, and once space returns the job resumes and
    every event counts exactly once."""
    stack = Stack(tmp_path / "home", free_port())
    first = write_feed(tmp_path / "first.jsonl", 2_000, seed=41)
    second = write_feed(tmp_path / "second.jsonl", 20_000, seed=42)
    with running_emulator(stack), small_disk(Path(stack.settings.lake)) as disk:
        stack.cli("produce", "--file", str(tmp_path / "first.jsonl"))
        stack.cli("stream", "--until-idle")
        committed, kpi_before = newest_commit(disk), stack.kpi("signal")

        filler = fill(disk, leave_bytes=200 * 1024)
        stack.cli("produce", "--file", str(tmp_path / "second.jsonl"))
        stopped = stack.run("stream", "--until-idle")
        batch = committed + 1
        after_start = stopped.stderr.split("stream job running", 1)[1].splitlines()[1:]
        assert stopped.returncode == 2, stopped.stderr
        assert len(after_start) == 1, "\n".join(after_start)  # nothing but the one line
        assert re.fullmatch(
            rf"telcopulse: error: stream job stopped: no space left on device writing "
            rf"{re.escape(str(disk))}\S* \(batch {batch}\)\. Nothing of batch {batch} is "
            rf"visible and nothing is lost: free some space and run `telcopulse stream` again, "
            rf"which resumes with batch {batch} \(full trace: "
            rf"{re.escape(str(stack.settings.stream_failure_log))}\)",
            after_start[0],
        ), after_start[0]
        assert "Traceback" not in stopped.stderr
        assert "No space left on device" in stack.settings.stream_failure_log.read_text()

        # While the disk is full: readers see the last whole batch, not a part of the next.
        assert newest_commit(disk) == committed
        pd.testing.assert_frame_equal(stack.kpi("signal"), kpi_before)
        assert set(current(stack, "silver")["event_id"]) == {e["event_id"] for e in first["events"]}

        filler.unlink()
        resumed = stack.cli("stream", "--until-idle").stderr
        assert f"batch {batch}: removed what an unfinished attempt wrote" in resumed
        feed = {
            "events": first["events"] + second["events"],
            "records": first["records"] + second["records"],
            "bad": first["bad"] + second["bad"],
        }
        figures = measure_layers(stack, feed)
    record(
        scenario(
            "the lake's disk full while a batch writes, then space freed",
            figures,
            0,
            passes(assert_layers_match_the_feed, figures, feed),
            "a 64 MB tmpfs filled to 200 KB free under the lake: the job stopped with one line "
            "naming the batch, readers kept the last whole batch, and the rerun finished it",
        )
    )
    assert_layers_match_the_feed(figures, feed)
