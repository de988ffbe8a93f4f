"""TelcoPulse benchmarks (bench): `make bench` (``python -m bench.run``) and `make soak`.

Tooling beside the runtime: each module measures one thing through ``backend`` and
``glue_job`` and can run alone (``python -m bench.<module> --help``, from the checkout's
root); ``run`` runs them all and writes results.md. Histories are written through the
job's own lake writer and table layout (``bench.history``, ``bench.lakes``).
"""

import argparse
from datetime import UTC, datetime
from pathlib import Path

UTC_MINUTE = "%Y-%m-%d %H:%M UTC"


def utc_minute(moment: datetime | None = None) -> str:
    """``moment`` (now by default) the way every bench report says when it measured:
    ``2026-12-05 02:13 UTC``."""
    return (moment or datetime.now(UTC)).astimezone(UTC).strftime(UTC_MINUTE)


def parse_utc_minute(text: str) -> datetime:
    """What ``utc_minute`` wrote, as an aware UTC datetime."""
    return datetime.strptime(text, UTC_MINUTE).replace(tzinfo=UTC)


def output_file(text: str) -> Path:
    """An ``--output`` argument: its folder is made now, so a run of many minutes never
    ends unable to write what it measured (``build/`` does not exist in a fresh clone)."""
    path = Path(text)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot write {path}: {exc.strerror}") from None
    return path
