"""telcopulse up's supervisor: when a dead stream job is started again, and what its
children start with."""

from __future__ import annotations

import sys

from backend.settings import load_settings
from backend.stack import RestartBudget, _spawn


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


def _arena_max_seen_by_a_child(tmp_path) -> str:
    child = _spawn(
        "probe",
        [sys.executable, "-c", "import os; print(os.environ.get('MALLOC_ARENA_MAX'))"],
        load_settings(home=tmp_path),
        tmp_path,
    )
    assert child.process.wait(timeout=30) == 0
    return child.log.read_text().strip()


def test_every_process_up_starts_caps_its_malloc_arenas(tmp_path, monkeypatch):
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert _arena_max_seen_by_a_child(tmp_path) == "2"


def test_an_arena_cap_the_user_set_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")
    assert _arena_max_seen_by_a_child(tmp_path) == "8"
