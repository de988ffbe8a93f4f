"""TelcoPulse benchmarks (bench): `make bench` (``python -m bench.run``) and `make soak`.

Tooling beside the runtime: each module measures one thing through ``backend`` and
``glue_job`` and can run alone (``python -m bench.<module> --help``, from the checkout's
root); ``run`` runs them all and writes results.md. Histories are written through the
job's own lake writer and table layout (``bench.history``, ``bench.lakes``).
"""

from datetime import UTC, datetime

UTC_MINUTE = "%Y-%m-%d %H:%M UTC"


def utc_minute(moment: datetime | None = None) -> str:
    """``moment`` (now by default) the way every bench report says when it measured:
    ``2026-12-05 02:13 UTC``."""
    return (moment or datetime.now(UTC)).astimezone(UTC).strftime(UTC_MINUTE)


def parse_utc_minute(text: str) -> datetime:
    """What ``utc_minute`` wrote, as an aware UTC datetime."""
    return datetime.strptime(text, UTC_MINUTE).replace(tzinfo=UTC)
