-- Newest committed micro-batch. Batches commit in order, so every batch_id at or
-- below it is complete and nothing above it is visible yet.
SELECT max(batch_id) AS batch_id
FROM ops
