"""Fixtures for the glue_job tests that query a lake they build: a module defines its own
module-scoped ``lake`` (a path), and these engines read it."""

from __future__ import annotations

import pytest
from helpers import EveryFileEngine

from backend.engine import DuckDBEngine


@pytest.fixture(scope="module")
def engine(lake) -> DuckDBEngine:
    """The query layer's engine over the module's lake, each query reading its ``Scope``."""
    return DuckDBEngine(lake)


@pytest.fixture(scope="module")
def every_file_engine(lake) -> DuckDBEngine:
    """The reference: the same lake with every file of each table read."""
    return EveryFileEngine(lake)
