"""telcopulse up's supervisor: when a dead stream job is started again."""

from __future__ import annotations

from backend.stack import RestartBudget


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
