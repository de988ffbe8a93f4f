"""telcopulse up's supervisor: when a dead stream job is started again, what its
children start with, and how it stops them."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import time

import pytest
from helpers import wait_for

from backend import stack
from backend.settings import load_settings
from backend.stack import RestartBudget, _spawn, _stop


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_stream_job_is_restarted_a_few_times_a_window_then_not():
    clock = Clock()
    budget = RestartBudget(limit=3, window=300, clock=clock)
    assert [budget.allow() for _ in range(3)] == [True, True, True]
    clock.now = 299
    assert not budget.allow(), "a crash loop stops the stack instead"


def test_restarts_long_ago_do_not_count():
    clock = Clock()
    budget = RestartBudget(limit=2, window=300, clock=clock)
    assert budget.allow()
    assert budget.allow()
    clock.now = 301
    assert budget.allow()


def _seen_by_a_child(tmp_path, name: str) -> str:
    child = _spawn(
        f"probe-{name}",  # a log of its own
        [sys.executable, "-c", f"import os; print(os.environ.get({name!r}))"],
        load_settings(home=tmp_path),
        tmp_path,
    )
    assert child.process.wait(timeout=30) == 0
    return child.log.read_text().strip()


@pytest.mark.parametrize(
    ("name", "value"), [("MALLOC_ARENA_MAX", "2"), ("MALLOC_MMAP_THRESHOLD_", "1048576")]
)
def test_every_process_up_starts_bounds_its_malloc(tmp_path, monkeypatch, name, value):
    monkeypatch.delenv(name, raising=False)
    assert _seen_by_a_child(tmp_path, name) == value


def test_a_malloc_setting_the_user_made_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert _seen_by_a_child(tmp_path, "MALLOC_ARENA_MAX") == "8"
    assert _seen_by_a_child(tmp_path, "MALLOC_MMAP_THRESHOLD_") == "65536"


# A child that, like the stream job, needs a process it started (its JVM) to stop cleanly:
# on SIGTERM it checks that helper is still there, then stops it and exits.
NEEDS_ITS_HELPER = """
import signal, subprocess, sys, time
helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
print("helper", helper.pid, flush=True)
def stop(*_):
    time.sleep(0.5)
    print("helper alive at stop" if helper.poll() is None else "helper gone", flush=True)
    helper.terminate()
    helper.wait()
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
time.sleep(300)
"""
# A child that ignores SIGTERM, and leaves a helper behind that ignores it too.
DEAF = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
helper = subprocess.Popen(
    [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
     "time.sleep(300)"]
)
print("helper", helper.pid, flush=True)
time.sleep(300)
"""


def _started(tmp_path, name: str, script: str) -> tuple[stack.Child, int]:
    child = _spawn(
        name,
        [sys.executable, "-c", textwrap.dedent(script)],
        load_settings(home=tmp_path),
        tmp_path,
    )
    wait_for(lambda: "helper" in child.log.read_text(), 30, f"{name} started its helper", 0.05)
    return child, int(child.log.read_text().split()[1])


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # Reparented and exited but not yet reaped still counts as gone.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] == "Z"


def test_stopping_a_child_leaves_what_it_started_to_it(tmp_path):
    child, helper = _started(tmp_path, "polite", NEEDS_ITS_HELPER)
    _stop(child)
    assert child.process.returncode == 0
    assert "helper alive at stop" in child.log.read_text()
    assert _gone(helper)


def test_a_child_deaf_to_sigterm_is_killed_with_all_it_started(tmp_path, monkeypatch):
    monkeypatch.setattr(stack, "STOP_TIMEOUT", 1.0)
    child, helper = _started(tmp_path, "deaf", DEAF)
    began = time.monotonic()
    _stop(child)
    assert child.process.returncode == -signal.SIGKILL
    assert time.monotonic() - began < 10
    wait_for(lambda: _gone(helper), 10, "the helper went with its child", 0.05)


def test_a_process_left_behind_by_a_child_that_stopped_is_killed(tmp_path, monkeypatch):
    monkeypatch.setattr(stack, "GROUP_GRACE", 0.5)
    # The child exits at SIGTERM at once; its helper ignores SIGTERM and stays.
    script = DEAF.replace("signal.signal(signal.SIGTERM, signal.SIG_IGN)\nhelper", "helper", 1)
    child, helper = _started(tmp_path, "leaves", script)
    _stop(child)
    assert child.process.returncode == -signal.SIGTERM
    wait_for(lambda: _gone(helper), 10, "the helper went with its child", 0.05)
