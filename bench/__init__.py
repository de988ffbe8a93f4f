"""TelcoPulse benchmarks (bench): `make bench` (``python -m bench.run``) and `make soak`.

Tooling beside the runtime: each module measures one thing through ``backend`` and
``glue_job`` and can run alone (``python -m bench.<module> --help``, from the checkout's
root); ``run`` runs them all and writes results.md. Histories are written through the
job's own lake writer and table layout (``bench.history``, ``bench.lakes``).
"""

import time


def utc_minute() -> str:
    """Now, the way every bench report says when it measured: ``2026-12-05 02:13 UTC``."""
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
