"""Compaction (gold, quarantine, _ops): fold a partition's many small batch files into one.

A live job commits a batch every couple of seconds, so a day of gold is tens of thousands
of small files, each holding partial sums for the minutes it saw. Compaction reads the
current rows of one partition (an hour of gold, a day of quarantine or ``_ops``), folds
them (``fold_rows``: gold partials merged to one row per key, quarantine and ``_ops``
rows kept as they are) and writes the result as part of the batch that runs it. It is a
plain step of ``BatchProcessor``: the folded files sit under that batch's ``commit=N``
directories and become current with its commit, together with a ``compactions`` row per
partition. From that commit on, readers take only the partition's files of commits at or
after N (``backend.catalog``), and the older files, now superseded, are deleted a grace
period later (``CompactionPlan.collectable``). A crash before the commit leaves the old
files current and the new ones invisible; the replayed batch clears them and decides
afresh.

``CompactionPlan`` is plain bookkeeping, free of Spark, so the policy can be unit-tested.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from glue_job.defaults import DEFAULT_COMPACT_AFTER, DEFAULT_GRACE_SECONDS
from glue_job.schemas import table_schema
from glue_job.tables import TABLES, Table

# An hour (gold) or day (quarantine, _ops) gone by that no batch wrote to for this many
# batches is closed: fold it at once.
QUIET_BATCHES = 30


def fold_rows(table: Table, rows: DataFrame) -> DataFrame:
    """The folded rows of one partition: what a reader must see, in as few rows as it can.

    ``merge`` tables sum their partial aggregates per key (``*_min`` and ``*_max`` columns
    take the min and max), which leaves every ratio-of-sums KPI unchanged; ``append``
    tables keep each row, with the batch that read it.
    """
    schema = table_schema(table)
    if table.compaction == "append":
        kept = [f.name for f in schema.fields]
        return rows.select(*kept, "batch_id")
    if table.compaction != "merge":
        raise ValueError(f"{table.name} is not compacted")
    groups = [*table.keys, *(p for p, _ in table.partition_types)]
    aggregates = []
    for spec in schema.fields:
        if spec.name in groups:
            continue
        if spec.name.endswith("_min"):
            combined = F.min(spec.name)
        elif spec.name.endswith("_max"):
            combined = F.max(spec.name)
        else:
            combined = F.sum(spec.name)
        aggregates.append(combined.cast(spec.dataType).alias(spec.name))
    folded = rows.groupBy(*groups).agg(*aggregates)
    return folded.select(*[f.name for f in schema.fields])


@dataclass
class PartitionFiles:
    """The commits whose files a reader takes from one partition of one table."""

    since: int = -1  # the commit of the partition's latest committed compaction
    commits: set[int] = field(default_factory=set)  # current commits, ``since`` included
    last_write: int = -1  # the newest commit that wrote new rows there

    @property
    def batch_files(self) -> int:
        """Current commits other than the compaction's own, each at least one small file."""
        return len(self.commits - {self.since})


@dataclass(frozen=True)
class Superseded:
    """Files of ``table``/``partition`` older than ``commit``, superseded when it committed."""

    table: str
    partition: str  # Table.partition_path
    commit: int
    committed_at: float  # time.monotonic()


@dataclass
class CompactionPlan:
    """Which partitions are due, and which files are garbage: bookkeeping only."""

    compact_after: int = DEFAULT_COMPACT_AFTER
    grace_seconds: float = DEFAULT_GRACE_SECONDS
    clock: Callable[[], float] = time.monotonic
    partitions: dict[tuple[str, str], PartitionFiles] = field(default_factory=dict)
    garbage: list[Superseded] = field(default_factory=list)

    def wrote(self, table: str, partition: str, commit: int) -> None:
        files = self.partitions.setdefault((table, partition), PartitionFiles())
        files.commits.add(commit)
        files.last_write = max(files.last_write, commit)

    def restore(
        self, table: str, partition: str, since: int, commits: Iterable[int], last_commit: int
    ) -> None:
        """State found on disk at start-up: what is current, and what is already garbage."""
        commits = [c for c in commits if c <= last_commit]
        files = PartitionFiles(
            since=since, commits={c for c in commits if c >= since}, last_write=max(commits)
        )
        self.partitions[(table, partition)] = files
        if since >= 0 and any(c < since for c in commits):
            self.garbage.append(Superseded(table, partition, since, self.clock()))

    def due(self, commit: int, now: datetime) -> list[tuple[str, str]]:
        """Partitions to fold in batch ``commit`` (which started at ``now``): those with many
        batch files, and closed ones (an hour or day gone by that no batch writes to now)."""
        chosen = []
        for (table, partition), files in sorted(self.partitions.items()):
            older = files.commits - {commit, files.since}
            if not older:
                continue
            quiet = files.last_write < commit - QUIET_BATCHES
            current = TABLES[table].partition_of(now) == partition
            closed = not current and quiet and len(files.commits - {files.since}) >= 2
            if len(older) >= self.compact_after or closed:
                chosen.append((table, partition))
        return chosen

    def committed(self, table: str, partition: str, commit: int) -> None:
        """Batch ``commit`` folded the partition and committed: only its files are current."""
        files = self.partitions.setdefault((table, partition), PartitionFiles())
        files.since = commit
        files.commits = {commit}
        self.garbage.append(Superseded(table, partition, commit, self.clock()))

    def collectable(self) -> list[Superseded]:
        """Superseded files whose grace period is over (taken off the list)."""
        now = self.clock()
        ripe = [g for g in self.garbage if now - g.committed_at >= self.grace_seconds]
        self.garbage = [g for g in self.garbage if now - g.committed_at < self.grace_seconds]
        return ripe
