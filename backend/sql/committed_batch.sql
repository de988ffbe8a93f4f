-- Newest committed micro-batch and the rollup marks of its commit row: its _ops row is
-- written last, so every batch at or below it is complete and nothing above it is visible
-- yet. Read from the files themselves: a row counts the same whether or not compaction
-- has copied it since.
-- One pass: the newest row (a compacted copy of it holds the same values). DuckDB lists
-- only the newest batch_date partition for it (backend.ranges.NEWEST).
SELECT batch_id, rolled_hours_until, ops_hours_until
FROM ops_files
ORDER BY batch_id DESC
LIMIT 1
