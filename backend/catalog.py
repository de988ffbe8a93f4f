"""Catalog (query layer): which rows of the lake a query may read, for DuckDB and Athena alike.

Every file carries the batch whose commit made it visible (``commit_id``). A query at the
committed batch W reads a row when ``commit_id <= W`` and, for compacted tables, when no
compaction committed at or before W has superseded its file. A compaction committed at
batch C folds every file of one partition from commits before C into files of
commit C, so a partition's compactions C1 < C2 < … cut its commits into windows
[-1, C1), [C1, C2), …, [Ck, ∞): a row stays current up to the batch before the next
compaction (``visible_through``). ``current_view_sql`` writes that rule once, as a view
over the table's files; the engine creates it locally and ``telcopulse deploy`` in Athena,
and queries select with ``? BETWEEN t.commit_id AND t.visible_through``.
"""

from __future__ import annotations

from glue_job.tables import COMPACTED, COMPACTIONS, Table

# The largest BIGINT: "not superseded (yet)".
FOREVER = 9_223_372_036_854_775_807


def current_view_sql(table: Table) -> str:
    """``CREATE OR REPLACE VIEW <table> AS …``: the table's files, each row with the last
    committed batch it is current for. Plain SQL that DuckDB and Athena (Trino) both run."""
    if not table.compaction:
        raise ValueError(f"{table.name} is not compacted: query its files directly")
    name = table.name.replace("'", "''")
    return f"""CREATE OR REPLACE VIEW {table.name} AS
WITH compacted AS (
    SELECT
        partition_path,
        commit_id AS first_commit,
        lead(commit_id) OVER (PARTITION BY partition_path ORDER BY commit_id) AS next_commit
    FROM {COMPACTIONS.files_name}
    WHERE table_name = '{name}'
),
windows AS (
    SELECT partition_path, first_commit, next_commit FROM compacted
    UNION ALL
    SELECT partition_path, CAST(-1 AS BIGINT) AS first_commit, min(first_commit) AS next_commit
    FROM compacted
    GROUP BY partition_path
)
SELECT
    f.*,
    coalesce(w.next_commit - 1, CAST({FOREVER} AS BIGINT)) AS visible_through
FROM {table.files_name} AS f
LEFT JOIN windows AS w
    ON w.partition_path = {partition_path_sql(table, "f")}
    AND f.commit_id >= w.first_commit
    AND (w.next_commit IS NULL OR f.commit_id < w.next_commit)"""


def partition_path_sql(table: Table, alias: str) -> str:
    """SQL for a row's ``Table.partition_path``, e.g. 'event_date=2026-12-01/event_hour=9'."""
    parts = [
        f"'{'/' if i else ''}{name}=' || CAST({alias}.{name} AS VARCHAR)"
        for i, name in enumerate(table.partitions)
    ]
    return " || ".join(parts)


def current_views() -> dict[str, str]:
    """Every view the catalog needs, by name, in an order that can be created."""
    return {table.name: current_view_sql(table) for table in COMPACTED}
