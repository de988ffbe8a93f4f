"""Dashboard degradation: four failures under every page, after a first good load.

Each page is opened over a copy of the lake the real job built and loads for real; then
one thing breaks underneath and the refresh interval passes. The page must show one
banner naming the cause and keep its last good data on screen marked stale, with no
traceback. What is injected, and where:

- a missing lake: the lake directory is deleted;
- a corrupt Parquet file: garbage bytes land among the files the page's queries read;
- a query engine error: DuckDB itself raises (out of memory) under ``DuckDBEngine.run``;
- an Athena-style timeout: ``DuckDBEngine.run`` answers as ``AthenaEngine.run`` does when
  pyathena reports a query that Athena stopped at its timeout.

Each cause is recorded as a row of docs/reliability.md (``tests/reliability.py``).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import page_helpers
import pandas as pd
import pytest
import streamlit as st
from helpers import newest_commit_dir
from page_helpers import texts
from pyathena.error import DatabaseError, OperationalError
from reliability import DashboardDegradation, record
from streamlit.testing.v1 import AppTest

from backend.engine import AthenaEngine, DuckDBEngine
from dashboard import cache

TRACEBACK = "Traceback (most recent call last)"
PAGES = {
    "Home": "Home.py",
    "KPIs": "pages/1_KPIs.py",
    "Map": "pages/2_Map.py",
    "Pipeline Health": "pages/3_Pipeline_Health.py",
}
# Where each page's own numbers come from, so a corrupt file there hits its queries.
PAGE_TABLE = {
    "Home": "gold/operator_minute",
    "KPIs": "gold/operator_minute",
    "Map": "gold/postal_status_minute",
    "Pipeline Health": "quarantine",
}
ATHENA_TIMEOUT = "Query timeout"  # Athena's StateChangeReason when a query hits its timeout
OUT_OF_MEMORY = "Out of Memory Error: failed to allocate data of size 256.0 MiB"
# What pyathena raises once botocore's retries of a throttled call are spent.
ATHENA_THROTTLED = (
    "An error occurred (TooManyRequestsException) when calling the StartQueryExecution "
    "operation (reached max retries: 3): Rate exceeded"
)


def metrics(at: AppTest, *labels: str) -> dict[str, str]:
    return {m.label: m.value for m in at.metric if m.label in labels}


def one_frame(at: AppTest, column: str) -> pd.DataFrame | None:
    frames = [df.value for df in at.dataframe if column in df.value.columns]
    return frames[0] if len(frames) == 1 else None


def deck_layers(at: AppTest):
    decks = at.get("deck_gl_json_chart")
    return json.loads(decks[0].proto.json)["layers"] if len(decks) == 1 else None


# What each page shows that must survive a failure (ages and timings may move on).
SHOWN: dict[str, Callable[[AppTest], object]] = {
    "Home": lambda at: metrics(at, "Events", "Avg signal", "Avg GPS precision", "In service"),
    "KPIs": lambda at: one_frame(at, "avg_signal_dbm"),
    "Map": deck_layers,
    "Pipeline Health": lambda at: metrics(at, "Batches", "Records read", "Quarantined"),
}


def same(before: object, after: object) -> bool:
    if isinstance(before, pd.DataFrame) and isinstance(after, pd.DataFrame):
        return before.equals(after)
    return before == after


@dataclass
class Seen:
    """What one page showed after the failure."""

    page: str
    banners: list[str]
    stale: bool
    kept: bool
    traceback: bool

    @property
    def ok(self) -> bool:
        return len(self.banners) == 1 and self.stale and self.kept and not self.traceback


def open_page(monkeypatch, home: Path, page: str) -> AppTest:
    return page_helpers.open_page(monkeypatch, home, PAGES[page], preset="all")


def shows_a_traceback(at: AppTest) -> bool:
    if at.exception:
        return True
    shown = [at.markdown, at.error, at.warning, at.info, at.code, at.caption, at.text]
    return any(TRACEBACK in texts(elements) for elements in shown)


# --- the four causes: each breaks what the page (already loaded) reads next -----------------


def delete_lake(monkeypatch, home: Path, page: str) -> None:
    shutil.rmtree(home / "lake")


def corrupt_a_file(monkeypatch, home: Path, page: str) -> None:
    # A partition the page reads: the engine lists only the partitions of its range.
    commit = newest_commit_dir(home / "lake" / PAGE_TABLE[page])
    (commit / "part-99999-corrupt.parquet").write_bytes(b"PAR1 not parquet at all")


def engine_runs_out_of_memory(monkeypatch, home: Path, page: str) -> None:
    class FailingConnection:
        """DuckDB's connection, whose queries fail as DuckDB does when memory runs out."""

        def __init__(self, real) -> None:
            self._real = real

        def cursor(self):
            raise duckdb.OutOfMemoryException(OUT_OF_MEMORY)

        def __getattr__(self, name):
            return getattr(self._real, name)

    settings = cache.get_settings()
    engine = cache.get_engine(cache.engine_key(settings), settings)  # the page's own engine
    assert isinstance(engine, DuckDBEngine)
    monkeypatch.setattr(engine._db, "con", FailingConnection(engine._db.con))


class FailingAthena:
    """Stands in for ``pyathena.connect``: every query fails as pyathena raises ``error``."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def __call__(self, **kwargs):
        return self

    def cursor(self):
        return self

    def execute(self, operation, parameters=None, **kwargs):
        raise self.error


def athena_fails(error: Exception):
    def inject(monkeypatch, home: Path, page: str) -> None:
        athena = AthenaEngine(
            workgroup="telcopulse",
            database="telcopulse",
            region="us-east-1",
            connect=FailingAthena(error),
        )
        monkeypatch.setattr(
            DuckDBEngine, "run", lambda self, sql, params=(), **_: athena.run(sql, params)
        )

    return inject


CAUSES = {
    "missing lake": (
        "lake directory deleted",
        delete_lake,
        "No files found that match the pattern",
    ),
    "corrupt parquet": (
        "corrupt Parquet file among the page's files",
        corrupt_a_file,
        "part-99999-corrupt.parquet",
    ),
    "query engine error": (
        "DuckDB out of memory on every query",
        engine_runs_out_of_memory,
        OUT_OF_MEMORY,
    ),
    "athena timeout": (
        "Athena query timeout (pyathena OperationalError)",
        athena_fails(OperationalError(ATHENA_TIMEOUT)),
        f"Athena: {ATHENA_TIMEOUT}",
    ),
    "athena throttled": (
        "Athena throttling (TooManyRequestsException) after botocore's retries",
        athena_fails(DatabaseError(ATHENA_THROTTLED)),
        f"Athena: {ATHENA_THROTTLED}",
    ),
}
# The causes that go away by themselves (the engine answers again): the page must recover on
# the next refresh. The others (a deleted lake, a corrupt file) stay until someone acts.
TRANSIENT = {"query engine error", "athena timeout", "athena throttled"}


@pytest.mark.parametrize("cause", list(CAUSES))
def test_every_page_keeps_its_last_good_data_marked_stale(monkeypatch, csv_lake, tmp_path, cause):
    described, inject, fragment = CAUSES[cause]
    seen: list[Seen] = []
    for n, page in enumerate(PAGES):
        home = tmp_path / f"home-{n}"
        shutil.copytree(csv_lake, home / "lake")
        with monkeypatch.context() as patch:
            at = open_page(patch, home, page)
            assert not at.exception, page
            assert not at.error, (page, texts(at.error))
            before = SHOWN[page](at)
            assert before is not None, f"{page} showed nothing to keep"
            assert len(before), f"{page} showed nothing to keep"

            inject(patch, home, page)
            st.cache_data.clear()  # as if the refresh interval had passed
            at.run()
            # The data directory differs per page run: name it as a user would set it.
            banners = [str(e.value).replace(str(home), "$TELCOPULSE_HOME") for e in at.error]
            seen.append(
                Seen(
                    page=page,
                    banners=banners,
                    stale="stale" in texts(at.caption),
                    kept=same(before, SHOWN[page](at)),
                    traceback=shows_a_traceback(at),
                )
            )
        if cause in TRANSIENT:  # the fault is gone: the next refresh shows fresh data
            st.cache_data.clear()
            at.run()
            assert not at.exception, page
            assert not at.error, (page, texts(at.error))
            assert "stale" not in texts(at.caption), page
            # Fresh data, not necessarily the same: the default range moved on meanwhile.
            assert len(SHOWN[page](at)), f"{page}: shows nothing after recovering"
        st.cache_data.clear()
        st.cache_resource.clear()

    named = all(fragment in " ".join(s.banners) for s in seen)
    banner_texts = sorted({b for s in seen for b in s.banners})
    record(
        DashboardDegradation(
            name=f"dashboard: {cause}",
            cause=described,
            pages=tuple(s.page for s in seen),
            banner=" / ".join(banner_texts),
            stale_data_kept=all(s.stale and s.kept for s in seen),
            traceback_shown=any(s.traceback for s in seen),
            result="pass" if named and all(s.ok for s in seen) else "fail",
        )
    )
    for s in seen:
        assert not s.traceback, s.page
        assert len(s.banners) == 1, (s.page, s.banners)
        assert fragment in s.banners[0], (s.page, s.banners)
        assert s.banners[0].startswith("Could not load "), (s.page, s.banners)
        assert s.stale, f"{s.page}: no stale note"
        assert s.kept, f"{s.page}: the last good data is gone"
