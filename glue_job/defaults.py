"""Stream job defaults (stream job): the tunables both entry points and the settings start from.

One constant per tunable. ``backend.settings`` takes its ``TELCOPULSE_*`` defaults from
here and the job's modules (compaction, dedup, the Kinesis reader, the local entry) theirs,
so a default changes in one place. Plain constants, free of Spark, numpy and pandas: the
settings, which every command and the dashboard image load, import this for nothing.
The AWS stack's own defaults are the template's parameters (``infra/telcopulse.yaml``).
"""

from __future__ import annotations

# Seconds between micro-batches of the local job (Spark's processing-time trigger).
DEFAULT_TRIGGER_SECONDS = 2.0
# Records one micro-batch reads from each shard at most.
DEFAULT_MAX_RECORDS_PER_SHARD = 40_000
# How long an event id is remembered for dedup (first arrival wins within it).
DEFAULT_DEDUP_HORIZON_HOURS = 24
# A partition with this many batch files is folded into one (at a 2 s trigger: a minute).
DEFAULT_COMPACT_AFTER = 30
# Superseded files stay on disk this long, so a query that listed them just before the
# compaction committed, or a paused dashboard's snapshot, still finds them.
DEFAULT_GRACE_SECONDS = 900.0
