"""telcopulse up's supervisor: when a dead stream job is started again, and what its
children start with."""

from __future__ import annotations

import sys

import pytest

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
