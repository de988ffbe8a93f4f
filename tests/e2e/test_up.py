"""`telcopulse up` as a user runs it: the stack comes up, KPIs move, and a stream job killed
by hand is started again without losing or double-counting an event, and Ctrl-C stops
every component cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import PROJECT_ROOT, free_port, wait_for
from stack_helpers import newest_commit

from backend.emulator import start_emulator, stop_emulator, wait_until_ready
from backend.engine import DuckDBEngine
from backend.queries import committed_batch
from backend.settings import load_settings

pytestmark = pytest.mark.slow


def children_of(pid: int) -> dict[int, str]:
    """Direct children of ``pid`` and their command lines, from /proc."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ")
                found[int(stat.parent.name)] = cmdline.decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
    return found


def stream_pid(up: subprocess.Popen) -> int:
    return next(pid for pid, cmd in children_of(up.pid).items() if "backend.cli stream" in cmd)


def test_up_survives_a_stream_job_killed_by_hand(tmp_path):
    home = tmp_path / "home"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TELCOPULSE_")},
        "TELCOPULSE_HOME": str(home),
        "TELCOPULSE_EMULATOR_PORT": str(free_port()),
        "TELCOPULSE_DASHBOARD_PORT": str(free_port()),
    }
    out = tmp_path / "up.log"
    with out.open("w") as log:
        up = subprocess.Popen(
            [sys.executable, "-m", "backend.cli", "up", "--rate", "150"],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    lake = home / "lake"
    try:
        wait_for(lambda: "Ctrl-C stops everything" in out.read_text(), 180, "the stack was up")
        wait_for(lambda: newest_commit(lake) >= 2, 180, "batches committed")
        first = stream_pid(up)
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: "starting it again" in out.read_text(), 30, "the stream job restarted")
        assert up.poll() is None, out.read_text()
        before = newest_commit(lake)
        wait_for(lambda: newest_commit(lake) > before + 1, 180, "the new job committed batches")
        assert stream_pid(up) != first
    finally:
        up.send_signal(signal.SIGINT)
        code = up.wait(timeout=180)
    assert code == 0, out.read_text()
    assert "all stopped" in out.read_text()
    # The restarted job heard the stop itself and stopped Spark: its JVM was not killed
    # under it (which had ended the log with "Connection refused").
    stream_log = (home / "logs" / "stream.log").read_text()
    assert "stream job stopped cleanly" in stream_log, stream_log[-3000:]
    assert "error" not in stream_log.lower(), stream_log[-3000:]

    # Everything the producer sent, once: drain what the stack left on the stream (the
    # emulator went down with the stack; its data stayed on disk).
    settings = load_settings(home=home, emulator_port=int(env["TELCOPULSE_EMULATOR_PORT"]))
    emulator = start_emulator(settings)
    try:
        wait_until_ready(settings, timeout=30)
        drain = subprocess.run(
            [sys.executable, "-m", "backend.cli", "stream", "--until-idle"],
            env=env,
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        stop_emulator(emulator)
    producer_log = (home / "logs" / "producer.log").read_text()
    sent = int(producer_log.rsplit("sent ", 1)[1].split()[0].replace(",", ""))
    engine = DuckDBEngine(lake)
    batch = committed_batch(engine)
    silver = engine.run("SELECT event_id FROM silver WHERE commit_id <= ?", [batch])
    quarantine = engine.run(
        "SELECT count(*) AS n FROM quarantine WHERE ? BETWEEN commit_id AND visible_through",
        [batch],
    )
    assert drain.returncode == 0, drain.stderr
    assert not silver["event_id"].duplicated().any()
    assert len(silver) + int(quarantine.n.iloc[0]) == sent
    kpi = subprocess.run(
        [sys.executable, "-m", "backend.cli", "kpi", "status", "--format", "csv"],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    events = sum(int(line.rsplit(",", 1)[1]) for line in kpi.splitlines()[1:])
    assert events == len(silver)
