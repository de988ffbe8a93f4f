"""Shared fixtures (one SparkSession per session, lakes built by the real job), results hook.

Plain helpers (paths, ``event``, ``build_lake``...) live in ``tests/helpers.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import reliability
from helpers import (
    MOBILE_LOGS,
    REPLAY_DATE,
    build_lake,
    build_output,
    replay_day,
    stamp_build_outputs,
    written_build_outputs,
)


def _on_glue_runtime() -> bool:
    from importlib.metadata import version

    return not version("pyspark").startswith("4.")


GLUE_MARK = "pytestmark = pytest.mark.glue"


def pytest_ignore_collect(collection_path: Path, config) -> bool | None:
    """On Glue 5.0's runtime (Spark 3.5, ``.venv-glue``) collect only the modules marked
    ``glue``: the others import the Spark-4-only local reader, the dashboard or the CLI."""
    if collection_path.suffix != ".py" or not collection_path.name.startswith("test_"):
        return None
    if _on_glue_runtime() and GLUE_MARK not in collection_path.read_text(encoding="utf-8"):
        return True
    return None


@pytest.fixture(scope="session")
def spark():
    from glue_job.spark_conf import build_spark

    # One session serves every Spark test of a worker, so its generated-code cache holds 2,000
    # classes instead of Spark's 100: a batch that compacts and rolls up outgrows 100 by
    # itself, and compiled its 219 classes again every time (Spark's CodegenMetrics; 6 once
    # warm with 2,000). The compaction and rollup tests took 200 s instead of 211 s. (The
    # job's own session holds 1,000, glue_job.spark_conf: it runs one job's queries, these
    # every test's.)
    session = build_spark("telcopulse-tests", **{"spark.sql.codegen.cache.maxEntries": "2000"})
    yield session
    session.stop()


@pytest.fixture(scope="session")
def csv_records() -> list[bytes]:
    from backend.replay import events_from_csv

    return list(events_from_csv(MOBILE_LOGS, REPLAY_DATE))


@pytest.fixture(scope="session")
def csv_lake(spark, tmp_path_factory, csv_records) -> Path:
    """mobile-logs.csv refined by the real job into a lake, in two micro-batches."""
    root = tmp_path_factory.mktemp("csv-lake") / "lake"
    half = len(csv_records) // 2
    return build_lake(spark, root, [csv_records[:half], csv_records[half:]])


@pytest.fixture(scope="session")
def csv_engine(csv_lake):
    """The CSV lake through DuckDB, as the dashboard reads it."""
    from backend.engine import DuckDBEngine

    return DuckDBEngine(csv_lake)


@pytest.fixture(scope="session")
def csv_batch(csv_engine) -> int:
    """The CSV lake's committed batch."""
    from backend.queries import committed_batch

    return committed_batch(csv_engine)


@pytest.fixture(scope="session")
def csv_valid_rows():
    """The CSV rows the contract accepts, with their contract values, computed with pandas."""
    import pandas as pd

    rows = pd.read_csv(MOBILE_LOGS, dtype={"postal_code": str, "operator": str})
    rows["line"] = rows.index + 2  # the header is line 1
    # Rows are rejected here only for what this file actually contains: an empty operator
    # and ASU readings outside 0-31 (which convert to more than -30 dBm).
    valid = rows[rows["operator"].notna() & rows["signal"].between(0, 31)].copy()
    valid["signal_dbm"] = 2 * valid["signal"] - 113
    valid["operator_key"] = valid["operator"].str.strip().str.casefold()
    # The operator rule (README, "Operators"): a handset banner such as "Solo llamadas de
    # emergencia" is no operator, and its status 0 means the banner's status.
    from glue_job.contract import ALIASES_FILE

    banners = pd.read_csv(ALIASES_FILE, dtype=str, keep_default_na=False).query("operator == ''")
    implied = dict(zip(banners["alias"], banners["status"], strict=True))
    banner = valid["operator_key"].map(implied)
    codes = {"EMERGENCY_ONLY": 2, "OUT_OF_SERVICE": 1}
    valid.loc[banner.notna() & (valid["status"] == 0), "status"] = banner.map(codes)
    valid.loc[banner.notna(), "operator_key"] = None
    valid["event_time"] = pd.to_datetime(
        replay_day().isoformat() + " " + valid["hour"], utc=True, format="%Y-%m-%d %H:%M:%S"
    )
    return valid


def pytest_collection_modifyitems(config, items) -> None:
    """Modules with slow tests first, then those of the Glue path (Spark batches), then the
    rest, each in its own order. `make test` hands whole modules to its two workers in this
    order (pytest-xdist ``--dist loadscope --no-loadscope-reorder``): the minutes-long modules
    start at once and the many short ones fill in after them, so neither worker waits alone
    on a long one at the end, and no module's fixtures are built twice."""
    items.sort(
        key=lambda item: (
            item.get_closest_marker("slow") is None,
            item.get_closest_marker("glue") is None,
        )
    )


# --- build/: the results this session measured, stamped with how it ended ------------------

_collection_errors: list[str] = []


def pytest_collectreport(report) -> None:
    if report.failed:
        _collection_errors.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus) -> None:
    """build/reliability/ from the scenarios recorded this session (see reliability), then a
    stamp in each build/ directory the session wrote to, which `make docs` reads.

    Under pytest-xdist (`make test` runs ``-n``) each worker hands what it recorded and wrote
    to the controller (``workeroutput``), which publishes and stamps once, for the whole run.
    """
    if hasattr(session.config, "workerinput"):
        session.config.workeroutput["telcopulse"] = json.dumps(
            {"rows": reliability.dump(), "build_outputs": written_build_outputs()}
        )
        return
    published = reliability.publish(
        exitstatus, collection_failed=bool(_collection_errors), seed_path=reliability.DOCS_JSON
    )
    if published:
        build_output(reliability.RESULTS_DIR.name)
    if _collection_errors:
        failure = f"{len(_collection_errors)} collection errors"
    elif exitstatus != pytest.ExitCode.OK:
        failure = f"exit status {int(exitstatus)}: {_exit_name(exitstatus)}"
    else:
        failure = None
    stamp_build_outputs(failure)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    """An xdist worker finished: keep its recorded rows and build/ directories (see above)."""
    handed = getattr(node, "workeroutput", {}).get("telcopulse")
    if handed is None:  # the worker crashed: its tests are reported failed, its rows lost
        return
    handed = json.loads(handed)
    reliability.load(handed["rows"])
    for name in handed["build_outputs"]:
        build_output(name)


def _exit_name(exitstatus) -> str:
    try:
        return pytest.ExitCode(exitstatus).name.lower().replace("_", " ")
    except ValueError:
        return "set by a plugin"
