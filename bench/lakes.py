"""Bench lakes (bench): where a benchmark history lives and what it holds, free of Spark.

A history of N days is the data directory ``<home>/<N>d``: the marker ``history.json``
(what ``bench.history`` wrote there) and the lake the settings read for that directory,
laid out as ``glue_job.tables`` says. ``bench.run`` and ``bench.pages_bench`` find the
histories and their gold files here rather than by paths of their own.
"""

from __future__ import annotations

import glob
import json
from pathlib import Path

from backend.settings import Settings
from glue_job.tables import TABLES

MARKER = "history.json"  # what was written; only a directory holding it is ever wiped
GOLD = tuple(table for name, table in TABLES.items() if name.startswith("gold_"))


def history_home(home: Path, days: int) -> Path:
    return home / f"{days}d"


def described(home: Path) -> dict:
    """What ``bench.history`` wrote in data directory ``home``'s marker; {} without one."""
    marker = home / MARKER
    return json.loads(marker.read_text()) if marker.exists() else {}


def history_homes(home: Path) -> dict[int, Path]:
    """Every history under ``home`` (a directory with a marker), by its days."""
    return {
        int(path.name[:-1]): path
        for path in home.glob("*d")
        if path.name[:-1].isdigit() and (path / MARKER).exists()
    }


def lake_of(home: Path) -> Path:
    """The lake of data directory ``home``: where the app pointed at ``home`` reads."""
    return Path(Settings(mode="local", home=home, lake_uri=None).lake)


def gold_files(lake: Path) -> list[Path]:
    """Every Parquet file of the gold tables (``Table.file_glob``), current or superseded."""
    return [Path(p) for table in GOLD for p in sorted(glob.glob(table.file_glob(str(lake))))]
