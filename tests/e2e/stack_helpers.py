"""Helpers of the end-to-end tests: the CLI pointed at a throwaway stack, and its emulator.

Imported by the e2e modules (``from stack_helpers import Stack``); test modules never import
one another.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
from helpers import PROJECT_ROOT

from backend.engine import DuckDBEngine
from backend.errors import QueryError
from backend.queries import committed_batch
from backend.settings import load_settings


def cli_command(*args: str) -> list[str]:
    """``telcopulse ARGS`` as this interpreter runs it."""
    return [sys.executable, "-m", "backend.cli", *args]


class Stack:
    """The CLI, pointed at one throwaway data directory and emulator port."""

    def __init__(self, home: Path, port: int) -> None:
        self.home = home
        self.env = {
            **os.environ,
            "TELCOPULSE_HOME": str(home),
            "TELCOPULSE_EMULATOR_PORT": str(port),
        }
        self.settings = load_settings(home=home, emulator_port=port)

    def run(
        self, *args: str, env: dict | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess:
        """``telcopulse ARGS`` in this stack's environment (or ``env``), whatever it returns."""
        return subprocess.run(
            cli_command(*args),
            env=env or self.env,
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """``telcopulse ARGS``, which must succeed."""
        result = self.run(*args, timeout=timeout)
        assert result.returncode == 0, f"telcopulse {' '.join(args)} failed:\n{result.stderr}"
        return result

    def kpi(self, name: str) -> pd.DataFrame:
        out = self.cli("kpi", name, "--format", "csv").stdout
        return pd.read_csv(io.StringIO(out), dtype={"postal_code": str}, keep_default_na=False)

    def table(self, name: str) -> pd.DataFrame:
        return DuckDBEngine(self.settings.lake).run(f"SELECT * FROM {name}")


@contextmanager
def running_emulator(stack: Stack) -> Iterator[subprocess.Popen]:
    """The stack's own Kinesis emulator, answering, and stopped afterwards."""
    from backend.emulator import start_emulator, stop_emulator, wait_until_ready

    process = start_emulator(stack.settings)
    try:
        wait_until_ready(stack.settings, timeout=30)
        yield process
    finally:
        stop_emulator(process)


def newest_commit(lake: Path | str) -> int:
    """The newest committed batch of ``lake``, -1 before the first."""
    try:
        return committed_batch(DuckDBEngine(lake))
    except QueryError:
        return -1
