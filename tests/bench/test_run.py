"""The bench's own checks: what it refuses to time."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from bench.lakes import MARKER
from bench.run import stale_histories

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def history(tmp_path, days: int, end: str | None):
    home = tmp_path / f"{days}d"
    home.mkdir()
    described = {"state": "done", "days": days} | ({"end": end} if end else {})
    (home / MARKER).write_text(json.dumps(described))
    return home


def test_a_history_that_ended_long_ago_is_stale(tmp_path):
    homes = {
        1: history(tmp_path, 1, "2026-12-05 11:50 UTC"),
        30: history(tmp_path, 30, "2026-12-05 07:24 UTC"),
    }
    assert stale_histories(homes, NOW) == ["30 d ended 2026-12-05 07:24 UTC"]


def test_a_history_without_an_end_is_stale(tmp_path):
    homes = {7: history(tmp_path, 7, None)}
    assert stale_histories(homes, NOW) == ["7 d ended at an unknown time"]


def test_fresh_histories_are_timed(tmp_path):
    homes = {1: history(tmp_path, 1, "2026-12-05 11:46 UTC")}
    assert stale_histories(homes, NOW) == []
