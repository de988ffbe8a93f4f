-- Newest committed micro-batch and the rollup marks of its commit row: its _ops row is
-- written last, so every batch at or below it is complete and nothing above it is visible
-- yet. Read from the files themselves: a row counts the same whether or not compaction
-- has copied it since.
SELECT batch_id, rolled_hours_until
FROM ops_files
WHERE batch_id = (SELECT max(batch_id) FROM ops_files)
LIMIT 1
