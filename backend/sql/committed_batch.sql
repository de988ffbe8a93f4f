-- Newest committed micro-batch: its _ops row is written last, so every batch at or
-- below it is complete and nothing above it is visible yet. Read from the files
-- themselves: a row counts the same whether or not compaction has copied it since.
SELECT max(batch_id) AS batch_id
FROM ops_files
